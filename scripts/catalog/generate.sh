#!/usr/bin/env bash
# Regenerates the built-in price catalog (pricing/catalog/) and its test fixtures
# (tests/data/catalogs/) from the community catalogs exactly as PyPI ships them:
# the `litellm` package's model_prices_and_context_window_backup.json, and the
# `genai-prices` package's bundled data (exported by export_genai_prices.py).
#
#   scripts/catalog/generate.sh [LITELLM_VERSION] [GENAI_PRICES_VERSION]
#
# Needs python3 with pip and venv, unzip, and cargo. Review the result with
# `llm-meter pricing diff` and `cargo test --test it catalog` before committing.
set -euo pipefail
cd "$(dirname "$0")/../.."
litellm_version=${1:-1.110.2}
genai_version=${2:-0.2.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps "litellm==$litellm_version" -d "$work"
unzip -q -o "$work"/litellm-*.whl 'litellm/model_prices_and_context_window_backup.json' -d "$work"
litellm_json="$work/litellm-$litellm_version.json"
mv "$work/litellm/model_prices_and_context_window_backup.json" "$litellm_json"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "genai-prices==$genai_version"
genai_json="$work/genai-prices-$genai_version.json"
"$work/venv/bin/python" scripts/catalog/export_genai_prices.py "$genai_json"

# LLM_METER=path/to/llm-meter uses that binary instead of building one.
if [ -z "${LLM_METER:-}" ]; then
    cargo build --release --quiet
    LLM_METER=target/release/llm-meter
fi
for source in litellm genai-prices; do
    case $source in
        litellm) file=$litellm_json; version="litellm $litellm_version" ;;
        genai-prices) file=$genai_json; version="genai-prices $genai_version" ;;
    esac
    # Without the built-in catalog, so the new one is checked on its own merits.
    LLM_METER_PRICING_BUILTIN=false "$LLM_METER" pricing import \
        --from "$source" "$file" --source-version "$version" --format json \
        --out pricing/catalog 2>/dev/null
done

mkdir -p tests/data/catalogs
rm -f tests/data/catalogs/*.json.gz
gzip -9 -n -c "$litellm_json" > "tests/data/catalogs/litellm-$litellm_version.json.gz"
gzip -9 -n -c "$genai_json" > "tests/data/catalogs/genai-prices-$genai_version.json.gz"
echo "catalog regenerated: litellm $litellm_version, genai-prices $genai_version"
