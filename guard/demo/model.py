"""The demo's model: a small Hugging Face-like directory (config, safetensors weights, tokenizer,
model card) made up on the spot."""

from __future__ import annotations

import json
import struct
from pathlib import Path

MODEL_CARD = """\
---
license: apache-2.0
language: [en]
library_name: transformers
pipeline_tag: text-classification
base_model: guard-demo/tiny-base
datasets: [guard-demo/reviews]
tags: [demo, guard]
model-index:
- name: tiny-sentiment
  results:
  - task: {type: text-classification}
    dataset: {name: reviews, type: guard-demo/reviews}
    metrics:
    - {type: accuracy, value: 0.91}
---

# tiny-sentiment

A four-parameter sentiment classifier made up by `guard demo`. It exists to be signed.
"""


def _safetensors(values: list[float]) -> bytes:
    """A valid (tiny) safetensors file: one F32 tensor."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "classifier.weight": {"dtype": "F32", "shape": [1, len(values)], "data_offsets": [0, len(data)]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def write_demo_model(model_dir: Path) -> None:
    """A small Hugging Face-like model directory."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["TinySentimentForSequenceClassification"],
                "model_type": "tiny-sentiment",
                "hidden_size": 4,
                "num_labels": 2,
                "id2label": {"0": "negative", "1": "positive"},
                "torch_dtype": "float32",
                "transformers_version": "4.46.0",
            },
            indent=2,
        )
        + "\n"
    )
    (model_dir / "model.safetensors").write_bytes(_safetensors([0.25, -1.5, 0.75, 2.0]))
    (model_dir / "tokenizer.json").write_text(
        json.dumps(
            {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "good": 1, "bad": 2}}}
        )
        + "\n"
    )
    (model_dir / "README.md").write_text(MODEL_CARD)
