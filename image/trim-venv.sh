#!/bin/sh
# Run in the builder stage on guard's venv: what the final image does not need, and compiled
# bytecode in place of sources (the root filesystem is read-only at run time: Python cannot
# write __pycache__ there, so what is not compiled here is compiled again at every start).
#
#  1. strip shared objects of their symbol tables (--strip-unneeded: the dynamic symbols stay);
#  2. third-party packages: bytecode only, next to where the source was (compileall -b, which
#     Python loads without the .py); guard itself keeps its sources (tracebacks show guard's
#     lines) and their __pycache__. Not -O/-OO: it would drop the libraries' asserts (the
#     kubernetes client checks responses with them) to save 6 MB of docstrings;
#  3. tests and the zstandard cffi backend (the C backend is the one imported).
set -eu
venv=$1
site=$(echo "$venv"/lib/python3.*/site-packages)

find "$site" -name '*.so*' -type f -exec strip --strip-unneeded {} +

rm -rf "$site/zstandard/_cffi"*.so
find "$site" -depth -type d \( -name tests -o -name test \) -path "$site/*/*" ! -path "$site/guard/*" \
    -exec rm -rf {} +

find "$site" -type d -name __pycache__ ! -path "$site/guard/*" -exec rm -rf {} +
python3 -m compileall -q -b -j 0 -x '/site-packages/guard/' "$site"
find "$site" -name '*.py' ! -path "$site/guard/*" -exec sh -c 'for f; do [ -f "${f}c" ] && rm "$f"; done' sh {} +
python3 -m compileall -q -j 0 "$site/guard"
