#!/usr/bin/env bash
# Check that every C source and header follows .clang-format (the ctest
# test "format"): clang-format --dry-run -Werror over the tree, so a
# difference fails with the file, line and the wanted change. Fix with
#   clang-format-14 -i FILE...
# Exit 77 (ctest: skipped) when clang-format is not installed
# (scripts/bootstrap.sh installs clang-format-14).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cf=""
for c in clang-format-14 clang-format; do
	if command -v "$c" >/dev/null 2>&1; then
		cf=$c
		break
	fi
done
if [ -z "$cf" ]; then
	echo "check-format: clang-format is not installed; skipped"
	exit 77
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files -- '*.c' '*.h')
else
	mapfile -t files < <(find common services tests \
		\( -name '*.c' -o -name '*.h' \) -type f | sort)
fi
if [ ${#files[@]} -eq 0 ]; then
	echo "check-format: no C files found"
	exit 1
fi
if ! "$cf" --dry-run -Werror --style=file "${files[@]}"; then
	echo "check-format: the files above differ from .clang-format"
	echo "  fix with: $cf -i <file>..."
	exit 1
fi
echo "check-format: ${#files[@]} files follow .clang-format ($cf)"
