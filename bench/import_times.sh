#!/bin/bash
# Import time of the libraries weighed in docs/design.md (Flags, Progress, Config validation)
# against the project's own modules: the median of 11 runs of `python -X importtime`, cumulative
# microseconds of the named module (all it imports included), and the size on disk of each library.
# Usage: bench/import_times.sh [PYTHON_WITH_THE_LIBRARIES] (default: a throwaway venv made here
# with click, ConfigArgParse, tqdm and pydantic).
set -euo pipefail
cd "$(dirname "$0")/.."
LIBPY=${1:-}
if [ -z "$LIBPY" ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    python3 -m venv "$tmp/venv" && "$tmp/venv/bin/pip" install --quiet click ConfigArgParse tqdm pydantic PyYAML
    LIBPY=$tmp/venv/bin/python
fi
OURS=${OURS:-.venv/bin/python}
median() { # python module -> median cumulative us over 11 runs
    for _ in $(seq 11); do
        "$1" -X importtime -c "import $2" 2>&1 | awk -F'|' -v m="$2" '{c=$2; n=$3; gsub(/ /,"",n)} n==m {print c+0}'
    done | sort -n | sed -n 6p
}
printf '%-32s %10s\n' module "import ms"
for m in argparse click configargparse tqdm pydantic yaml; do
    printf '%-32s %10.1f\n' "$m" "$(echo "$(median "$LIBPY" "$m") / 1000" | bc -l)"
done
for m in pipeline_exporter.flags pipeline_exporter.progress pipeline_exporter.validation; do
    printf '%-32s %10.1f\n' "$m" "$(echo "$(median "$OURS" "$m") / 1000" | bc -l)"
done
# pydantic's cost is paid again for every model class it builds: two small ones, as a web config needs.
for _ in $(seq 11); do "$LIBPY" -c '
import time; t = time.perf_counter()
from pydantic import BaseModel, ConfigDict
class TLS(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cert_file: str
    key_file: str
    min_version: str = "TLS12"
class Web(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tls_server_config: TLS | None = None
    basic_auth_users: dict[str, str] = {}
print(round((time.perf_counter() - t) * 1000, 1))'; done | sort -n | sed -n 6p | xargs printf '%-32s %10s\n' "pydantic + 2 models"
site=$("$LIBPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
du -sh "$site"/{click,configargparse.py,tqdm,pydantic,pydantic_core,annotated_types,typing_inspection,typing_extensions.py} 2>/dev/null
