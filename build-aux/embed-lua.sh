#!/bin/sh
# Turns the rate-limit script into a C string, preceded by the constants of
# its C header as Lua locals, so that both sides read one source:
#   embed-lua.sh src/check/rlconst.h src/check/ratelimit.lua > src/ratelimit_lua.c
set -e
header=$1
script=$2
consts=$(sed -n 's/^#define \(RL_[A-Z0-9_]*\) \([0-9][0-9]*\)$/local \1 = \2/p' "$header")
if [ -z "$consts" ]; then
  echo "embed-lua.sh: no RL_ constants in $header" >&2
  exit 1
fi
echo "/* generated from $(basename "$header") and $(basename "$script") by build-aux/embed-lua.sh; do not edit */"
echo 'extern const char ratelimit_lua[];'
echo 'const char ratelimit_lua[] ='
printf '%s\n' "$consts" | sed -e 's/^/    "/' -e 's/$/\\n"/'
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$script"
echo '    ;'
