# shellcheck shell=bash
# Sourced by contrib/stack: the Debian packages the stack needs (contrib/packages-*.txt,
# shared with contrib/Dockerfile) and the build in build/ (or another tree).

# package_list FILE...: the package names of the lists, one a line, # starting a comment.
package_list() { awk '{ sub(/#.*/, ""); for (i = 1; i <= NF; i++) print $i }' "$@"; }

# The product's build dependencies and runtime libraries (what contrib/Dockerfile installs
# in its two stages), then the services and tools of the stack and its test steps.
PACKAGE_LISTS=("$ROOT/contrib/packages-build.txt" "$ROOT/contrib/packages-runtime.txt"
	"$ROOT/contrib/packages-stack.txt")
for list in "${PACKAGE_LISTS[@]}"; do
	[[ -r $list ]] || die "${list#"$ROOT"/} is missing: it lists the packages to install"
done
unset list
mapfile -t PACKAGES < <(package_list "${PACKAGE_LISTS[@]}")

install_packages() {
	local missing=() pkg status
	declare -A state=()
	while read -r pkg status; do
		state[$pkg]=$status
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
	for pkg in "${PACKAGES[@]}"; do
		[[ ${state[$pkg]:-} == installed ]] || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		banner "packages: all ${#PACKAGES[@]} installed"
		return
	fi
	banner "packages: installing ${missing[*]}"
	[[ $(id -u) == 0 ]] || die "installing packages needs root"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
}

# ---------------------------------------------------------------------------------------
# Build

ensure_configure() {
	[[ -f $ROOT/configure.ac ]] || die "configure.ac is missing: nothing to build"
	if [[ ! -x $ROOT/configure || $ROOT/configure.ac -nt $ROOT/configure ]]; then
		banner "build: autoreconf -fi"
		(cd "$ROOT" && autoreconf -fi)
	fi
}

# build_tree DIR [CONFIGURE_ARGS...]: configure once (automake's rules re-run it when
# configure changes), then make. Compiler flags go in as configure arguments so that a
# later re-check keeps them.
build_tree() {
	local dir=$1
	shift
	ensure_configure
	mkdir -p "$dir"
	if [[ ! -f $dir/config.status ]]; then
		banner "build: configure in ${dir#"$ROOT"/}/"
		(cd "$dir" && "$ROOT/configure" "$@")
	fi
	banner "build: make -C ${dir#"$ROOT"/}"
	make -C "$dir" -j2
}
