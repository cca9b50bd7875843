#!/bin/sh
# Turns the numbered migrations into a C table so that tollgatectl carries
# its schema with it and never depends on where the sources were installed.
echo '/* generated from the sql/ migrations by build-aux/embed-sql.sh; do not edit */'
echo '#include "migrate.h"'
echo 'const struct migration migrations[] = {'
for f in "$@"; do
  name=$(basename "$f" .sql)
  printf '  { "%s",\n' "$name"
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$f"
  echo '  },'
done
echo '  { 0, 0 }'
echo '};'
