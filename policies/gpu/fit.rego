# The model must fit the GPU memory it is given: parameter count x bytes per parameter of its
# precision (or quantization) vs the memory of the requested GPUs: the product the pod is confined
# to (the smallest if several), MIG slices by profile, DRA GPU devices of the container's claims.
# Weights are a lower bound (activations and KV cache need more): close calls are warned.
package guard.gpu.fit

import data.guard.lib.fmt

controls := ["NIST-AI-RMF MEASURE-2.6", "NIST-AI-RMF MANAGE-2.1"]

headroom := 0.9

bytes_per_parameter := {
	"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1,
	"int8": 1, "q8_0": 1.0625, "fp6": 0.75, "int4": 0.5, "nf4": 0.5, "fp4": 0.5, "mxfp4": 0.53125,
	"q4_0": 0.5625, "q4_k_m": 0.5625, "q5_k_m": 0.6875, "q6_k": 0.8203125,
}

# The storage type of the weights: a known quantization wins over the precision.
weight_type(m) := lower(m.quantization) if {
	is_string(m.quantization)
	bytes_per_parameter[lower(m.quantization)]
} else := lower(m.precision) if is_string(m.precision)

# Weight memory of each model artifact that states its size and a known precision.
needed_gib[a.ref] := gib_needed if {
	some a in input.artifacts
	a.isModel
	m := a.facts.model
	is_number(m.parameterCount)
	gib_needed := (m.parameterCount * bytes_per_parameter[weight_type(m)]) / 1073741824 # bytes per GiB
}

# Per container, computed once: its GPU resources, whole GPUs (extended resources and DRA
# devices of its claims) and MIG memory.
gpus[c.name] := info if {
	some c in input.workload.containers
	dra := sum([d.count |
		some claim in input.workload.resourceClaims
		claim.name in c.claims
		some d in claim.devices
		d.gpu
		d.count != null
	])
	c.gpu.count + dra > 0 # first: a container without GPUs (a sidecar) costs no more
	effective := object.union(c.gpu.requests, c.gpu.limits)
	whole := sum([n | some r, n in effective; not startswith(r, "nvidia.com/mig-")]) + dra
	mig := sum([memory |
		some r, n in effective
		startswith(r, "nvidia.com/mig-")
		memory := n * input.cluster.migProfiles[trim_prefix(r, "nvidia.com/mig-")]
	])
	info := {"container": c, "effective": effective, "dra": dra, "whole": whole, "migGiB": mig}
}

# The GPU products the pod is confined to ([] when it is not confined: see input.schema.json).
products := p if {
	p := input.workload.placement.gpuProducts
	is_array(p)
} else := []

# Memory of one GPU of the pod's product; undefined when the product is open or unknown.
product_gib := min([input.cluster.gpuProducts[p].memoryGiB | some p in products]) if {
	count(products) > 0
	every p in products {
		input.cluster.gpuProducts[p]
	}
}

# Memory each GPU container is given; undefined when its whole GPUs are of an unknown product.
available_gib[name] := g.migGiB if {
	some name, g in gpus
	g.whole == 0
}

available_gib[name] := g.migGiB + (g.whole * product_gib) if {
	some name, g in gpus
	g.whole > 0
}

# [model artifact, GPU container using it, its GPUs]
gpu_containers contains [a, g.container, g] if {
	some a in input.artifacts
	a.isModel
	some name in a.usedBy
	g := gpus[name]
}

deny contains v if {
	some [a, c, g] in gpu_containers
	need := needed_gib[a.ref]
	have := available_gib[c.name]
	need > have
	v := {
		"rule": "model_exceeds_gpu_memory",
		"severity": "high",
		"controls": controls,
		"container": c.name,
		"artifact": a.ref,
		"message": sprintf("%s %q: model %s needs %s GiB for %s parameters in %s; its GPUs give %s GiB (%s)", [
			c.type, c.name, a.ref, fmt.decimal(need, 1), fmt.number(a.facts.model.parameterCount),
			weight_type(a.facts.model), fmt.decimal(have, 1), gpu_text(g),
		]),
	}
}

warn contains v if {
	some [a, c, g] in gpu_containers
	need := needed_gib[a.ref]
	have := available_gib[c.name]
	need <= have
	need > headroom * have
	v := {
		"rule": "model_tight_fit",
		"severity": "low",
		"controls": controls,
		"container": c.name,
		"artifact": a.ref,
		"message": sprintf("%s %q: model %s weights take %s of %s GiB (%s): little room left for activations and KV cache", [
			c.type, c.name, a.ref, fmt.decimal(need, 1), fmt.decimal(have, 1), gpu_text(g),
		]),
	}
}

warn contains v if {
	some [a, c, g] in gpu_containers
	not needed_gib[a.ref]
	v := {
		"rule": "model_size_unknown",
		"severity": "info",
		"controls": controls,
		"container": c.name,
		"artifact": a.ref,
		"message": sprintf("%s %q: model %s does not state parameterCount and a known precision (found %s, %s): fit not checked", [
			c.type, c.name, a.ref, fmt.value(object.get(a, ["facts", "model", "parameterCount"], null)),
			fmt.value(object.get(a, ["facts", "model", "precision"], null)),
		]),
	}
}

warn contains v if {
	some [a, c, g] in gpu_containers
	needed_gib[a.ref]
	not available_gib[c.name]
	v := {
		"rule": "gpu_memory_unknown",
		"severity": "info",
		"controls": controls,
		"container": c.name,
		"artifact": a.ref,
		"message": sprintf("%s %q: GPU product not pinned or not in the cluster facts (found %s): fit of model %s not checked", [
			c.type, c.name, fmt.value(products), a.ref,
		]),
	}
}

gpu_text(g) := concat(", ", array.concat(
	[sprintf("%s x %s", [fmt.number(n), r]) | some r, n in g.effective],
	[sprintf("%s x DRA GPU", [fmt.number(g.dra)]) | g.dra > 0],
))
