#!/usr/bin/env python3
"""Export the price data bundled in the `genai-prices` PyPI package as JSON.

The output has the structure of the package's published "v2" data file
(`DEFAULT_UPDATE_URL` in `genai_prices/update_prices.py`,
https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json):
a plain JSON list of providers, each with its models, prices, price variants,
match clauses and usage extractors. Fields that are None are left out.

Values are written so that nothing goes through a binary float:
  * prices (Decimal) as JSON strings in plain notation, e.g. "0.075", "10";
    the published file writes bare JSON numbers instead, so readers should
    accept both;
  * dates as "YYYY-MM-DD"; times of day as "HH:MM:SS" plus "Z" when in UTC.

Before anything is written, the JSON text is parsed back with the package's own
loader (`genai_prices.types._providers_from_raw`, which also reads the fetched
v2 file) and compared with the bundled data: provider and model counts, every
model's prices and price variants, then everything else. On any difference the
script prints what differs and exits with status 1, writing nothing.

Run it (Python 3.11+):

    python3 -m venv /tmp/gp
    /tmp/gp/bin/pip install genai-prices==0.2.3
    /tmp/gp/bin/python scripts/catalog/export_genai_prices.py > genai-prices.json
    # or write to a file given as the first argument:
    /tmp/gp/bin/python scripts/catalog/export_genai_prices.py genai-prices.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
from genai_prices.data import providers as BUNDLED_PROVIDERS
from genai_prices.types import ModelPrice, Provider, _providers_from_raw

# Python attribute names that differ from their JSON keys (ClauseOr, ClauseAnd).
JSON_KEYS = {'or_': 'or', 'and_': 'and'}


def to_json(value: Any) -> Any:
    """Turn genai-prices objects into plain JSON values, dropping None fields."""
    if isinstance(value, Decimal):
        return format(value, 'f')  # positional notation, never 1E+1
    if isinstance(value, datetime.datetime):
        raise TypeError(f'unexpected datetime in price data: {value!r}')
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat().replace('+00:00', 'Z')
    if isinstance(value, ModelPrice):  # a plain object holding one attribute per price key
        items = vars(value).items()
    elif dataclasses.is_dataclass(value):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if f.init)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        return [to_json(item) for item in value]
    elif isinstance(value, (str, int)):  # also bool
        return value
    else:
        raise TypeError(f'cannot export {type(value).__name__}: {value!r}')
    return {
        JSON_KEYS.get(key, key): to_json(item)
        for key, item in items
        if item is not None and not key.startswith('_')
    }


def round_trip_problems(text: str, bundled: list[Provider]) -> list[str]:
    """Parse `text` as genai-prices does for its v2 file and list differences from `bundled`."""
    parsed = _providers_from_raw(json.loads(text))
    if len(parsed) != len(bundled):
        return [f'{len(parsed)} providers read back, {len(bundled)} bundled']
    problems = []
    for new, old in zip(parsed, bundled):
        if new.id != old.id or len(new.models) != len(old.models):
            problems.append(f'provider {old.id}: read back as {new.id} with {len(new.models)} models, not {len(old.models)}')
            continue
        for new_model, old_model in zip(new.models, old.models):
            if new_model.id != old_model.id:
                problems.append(f'{old.id}/{old_model.id}: read back as {new_model.id}')
            elif new_model.prices != old_model.prices:
                problems.append(f'{old.id}/{old_model.id}: prices differ')
            elif new_model.price_variants != old_model.price_variants:
                problems.append(f'{old.id}/{old_model.id}: price_variants differ')
    if not problems and parsed != bundled:
        problems.append('prices agree, but other fields (match clauses, extractors, ...) differ')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output', nargs='?', type=Path, help='file to write (default: stdout)')
    args = parser.parse_args()

    text = json.dumps(to_json(BUNDLED_PROVIDERS), indent=2, ensure_ascii=False) + '\n'

    problems = round_trip_problems(text, BUNDLED_PROVIDERS)
    if problems:
        print('round-trip check FAILED, nothing written:', *problems, sep='\n  ', file=sys.stderr)
        return 1

    if args.output:
        args.output.write_text(text, encoding='utf-8')
    else:
        sys.stdout.write(text)
    model_count = sum(len(p.models) for p in BUNDLED_PROVIDERS)
    print(
        f'genai-prices {genai_prices.__version__}: {len(BUNDLED_PROVIDERS)} providers, '
        f'{model_count} models; round-trip check passed',
        file=sys.stderr,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
