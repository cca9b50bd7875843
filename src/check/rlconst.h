/* rlconst: the bounds of rate limits, one source for the C code and for
 * the decision script.  build-aux/embed-lua.sh turns every line of the form
 * "#define RL_<NAME> <digits>" into "local RL_<NAME> = <digits>" at the top
 * of src/ratelimit.lua, so keep the values plain decimal integers. */
#ifndef TOLLGATE_RLCONST_H
#define TOLLGATE_RLCONST_H

/* Limits of one tier or key, as validated when they are written. */
#define RL_WINDOWS_MAX 16
#define RL_NAME_MAX 32
#define RL_WINDOW_S_MAX 2678400
#define RL_LIMIT_MAX 1000000000
#define RL_PRECISION_DEFAULT 10
#define RL_PRECISION_MAX 60

/* The cost of one check; 0 is the peek of ratelimit_peek. */
#define RL_COST_MAX 1000

/* Quota, credits and versions: exact in Lua's doubles (below 2^53). */
#define RL_COUNT_MAX 1000000000000000

/* Key ids inside the script's hash tag. */
#define RL_KEY_ID_MAX 64

/* Values the script keeps in a key's windows string (records of 5 + precision
 * values; at most RL_WINDOWS_MAX of them belong to one check).  Past it, the
 * records of windows the check does not use are dropped. */
#define RL_STATE_VALUES_MAX 2048

#endif
