# shellcheck shell=bash
# The install step of contrib/stack test (sourced by contrib/stack): what
# `./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var && make && make install`
# puts on a server, installed into a scratch DESTDIR and checked without starting anything.
# docs/install.md is the procedure this tree serves.

INSTALL_DIR=$RUN/install
# Every file make install must produce, relative to DESTDIR.
INSTALL_EXPECTED=(
	usr/bin/tollgatectl usr/sbin/tollgate-fcgi usr/sbin/tollgate-billingd
	etc/tollgate/tollgate.conf usr/share/doc/tollgate/examples/tollgate.conf
	usr/share/man/man1/tollgatectl.1 usr/share/man/man5/tollgate.conf.5
	usr/share/man/man8/tollgate-fcgi.8 usr/share/man/man8/tollgate-billingd.8
	usr/lib/systemd/system/tollgate-fcgi.socket usr/lib/systemd/system/tollgate-fcgi.service
	usr/lib/systemd/system/tollgate-gate.socket usr/lib/systemd/system/tollgate-gate.service
	usr/lib/systemd/system/tollgate-billingd.service usr/lib/systemd/system/tollgate-backup.service
	usr/lib/systemd/system/tollgate-backup.timer usr/share/doc/tollgate/backup.md
	usr/lib/tmpfiles.d/tollgate.conf usr/lib/sysusers.d/tollgate.conf etc/logrotate.d/tollgate
	etc/apache2/conf-available/tollgate.conf etc/lighttpd/conf-available/15-tollgate.conf
	usr/share/tollgate/apache2/tollgate.conf usr/share/tollgate/lighttpd/15-tollgate.conf
	usr/share/doc/tollgate/README.md usr/share/doc/tollgate/install.md
	usr/share/doc/tollgate/configuration.md usr/share/doc/tollgate/api.md
	usr/share/doc/tollgate/openapi.yaml
	usr/share/doc/tollgate/operations.md usr/share/doc/tollgate/security.md
	usr/share/doc/tollgate/privacy.md usr/share/doc/tollgate/monitoring.md
	usr/share/doc/tollgate/img/operator-view.png
)

# install_fail MESSAGE: the step fails with MESSAGE.
install_fail() {
	say "install: FAILED: $*"
	return 1
}

# install_build DESTDIR: configure in a scratch directory as docs/install.md does, build
# without optimisation (the step checks the tree, not the code: -O0 halves the time) and
# install twice, the second time over an edited configuration, which must stay.
install_build() {
	local dest=$1 b=$INSTALL_DIR/build
	mkdir -p "$b"
	(
		cd "$b"
		"$ROOT/configure" -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
			CFLAGS="-O0 -g0" >configure.out
		make -s -j2 >make.out 2>&1 || {
			tail -n 30 make.out
			exit 1
		}
		make -s install DESTDIR="$dest" >install.out
		printf '# edited\n' >>"$dest/etc/tollgate/tollgate.conf"
		make -s install DESTDIR="$dest" >install2.out
	)
	grep -q '^# edited$' "$dest/etc/tollgate/tollgate.conf" ||
		install_fail "a second make install overwrote the edited etc/tollgate/tollgate.conf"
}

# install_tree DESTDIR: every expected file, the configuration's mode, the programs.
install_tree() {
	local dest=$1 f missing=() mode prog out cfg=$INSTALL_DIR/tollgate.conf re
	for f in "${INSTALL_EXPECTED[@]}"; do
		[[ -f $dest/$f ]] || missing+=("$f")
	done
	((${#missing[@]} == 0)) || install_fail "missing from the installed tree: ${missing[*]}"
	mode=$(stat -c %a "$dest/etc/tollgate/tollgate.conf")
	[[ $mode == 640 ]] || install_fail "etc/tollgate/tollgate.conf has mode $mode, want 640"
	for prog in usr/sbin/tollgate-fcgi usr/sbin/tollgate-billingd usr/bin/tollgatectl; do
		out=$("$dest/$prog" --version) || install_fail "$prog --version failed"
		re="^${prog##*/} [0-9][^ ]* \\(commit [0-9a-z]+\\)$"
		[[ $out =~ $re ]] ||
			install_fail "$prog --version printed '$out'"
		out=$("$dest/$prog" --help) || install_fail "$prog --help failed"
		# The built-in default path is the installed configuration's.
		[[ $out == *"/etc/tollgate/tollgate.conf"* ]] ||
			install_fail "$prog --help names no /etc/tollgate/tollgate.conf"
	done
	say "install: ${#INSTALL_EXPECTED[@]} files present, tollgate.conf 0640 and kept on reinstall, --version: $("$dest/usr/sbin/tollgate-fcgi" --version)"
	# The sample names the state directory and is valid once the two required values
	# are filled in, as docs/install.md does.
	grep -qx 'journal_dir = /var/lib/tollgate/journal' "$dest/etc/tollgate/tollgate.conf" ||
		install_fail "the sample's journal_dir is not /var/lib/tollgate/journal"
	grep -qx 'metrics_dir = /var/lib/tollgate/metrics' "$dest/etc/tollgate/tollgate.conf" ||
		install_fail "the sample's metrics_dir is not /var/lib/tollgate/metrics"
	sed -e "s|^# hmac_secret =.*|hmac_secret = $(random_hex 32)|" \
		-e "s|^# conninfo =.*|conninfo = host=127.0.0.1 dbname=tollgate user=tollgate_app|" \
		"$dest/usr/share/doc/tollgate/examples/tollgate.conf" >"$cfg"
	out=$("$dest/usr/bin/tollgatectl" -c "$cfg" config check --offline 2>&1) ||
		install_fail "the sample with hmac_secret and conninfo filled in: $out"
	rm -f "$cfg"
	say "install: the sample configuration passes config check once its two required values are set"
}

# install_libs DESTDIR: every shared library the installed programs load comes from a
# package of contrib/packages-runtime.txt, the list contrib/Dockerfile's runtime stage
# installs: a library the build starts to link cannot be missing from the container.
install_libs() {
	local dest=$1 prog lib pkg libs=() runtime missing=()
	for prog in usr/sbin/tollgate-fcgi usr/sbin/tollgate-billingd usr/bin/tollgatectl; do
		mapfile -t -O "${#libs[@]}" libs < <(readelf -d "$dest/$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	done
	((${#libs[@]} > 0)) || install_fail "readelf -d found no shared library in the programs"
	runtime=" $(package_list "$ROOT/contrib/packages-runtime.txt" | tr '\n' ' ') "
	for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
		pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
		[[ -n $pkg ]] || install_fail "no installed package holds $lib"
		[[ $runtime == *" $pkg "* ]] || missing+=("$pkg ($lib)")
	done
	((${#missing[@]} == 0)) ||
		install_fail "contrib/packages-runtime.txt lacks what the programs load: ${missing[*]}"
	say "install: the $(printf '%s\n' "${libs[@]}" | sort -u | wc -l) shared libraries of the programs come from packages of contrib/packages-runtime.txt"
}

# install_man DESTDIR: mandoc's lint, warnings included.
install_man() {
	local dest=$1 out
	out=$(mandoc -T lint -W warning "$dest"/usr/share/man/man*/*) ||
		install_fail "mandoc -T lint: $out"
	say "install: mandoc -T lint -W warning: 4 man pages clean"
}

# install_units DESTDIR: systemd-analyze verify loads each unit as systemd would, checks
# every directive, the Documentation= man pages and that the commands exist. Nothing is
# started (systemd is not PID 1 here). The programs live under DESTDIR, so the commands
# are pointed there in a copy; everything else is verified as installed.
install_units() {
	local dest=$1 units=$INSTALL_DIR/units out uid gid got
	rm -rf "$units"
	mkdir -p "$units"
	cp "$dest"/usr/lib/systemd/system/tollgate-* "$units/"
	sed -i -e "s|/usr/sbin/|$dest/usr/sbin/|g" -e "s|/usr/bin/|$dest/usr/bin/|g" "$units"/*
	out=$(cd "$units" && MANPATH=$dest/usr/share/man SYSTEMD_UNIT_PATH=$units: \
		systemd-analyze verify tollgate-fcgi.socket tollgate-fcgi.service tollgate-gate.socket \
		tollgate-gate.service tollgate-billingd.service tollgate-backup.service \
		tollgate-backup.timer 2>&1) ||
		install_fail "systemd-analyze verify: $out"
	[[ -z $out ]] || install_fail "systemd-analyze verify: $out"
	grep -qx 'StandardInput=socket' "$units/tollgate-fcgi.service" ||
		install_fail "tollgate-fcgi.service does not take its socket on descriptor 0"
	# sysusers.d and tmpfiles.d applied to DESTDIR, whose account database starts as a
	# fresh Debian's (root, adm): the account, then the directories with their owners
	# and the configuration's group.
	grep -E '^(root|adm):' /etc/group >"$dest/etc/group"
	grep -E '^(root|adm):' /etc/passwd >"$dest/etc/passwd"
	out=$(systemd-sysusers --root="$dest" 2>&1) ||
		install_fail "systemd-sysusers could not apply usr/lib/sysusers.d/tollgate.conf: $out"
	grep -q '^tollgate:' "$dest/etc/passwd" || install_fail "sysusers.d made no tollgate user"
	out=$(systemd-tmpfiles --root="$dest" --create tollgate.conf 2>&1) ||
		install_fail "systemd-tmpfiles: $out"
	# Ids, not names: the host's account database is not DESTDIR's.
	uid=$(awk -F: '$1 == "tollgate" { print $3 }' "$dest/etc/passwd")
	gid=$(awk -F: '$1 == "tollgate" { print $3 }' "$dest/etc/group")
	got=$(stat -c '%u %g %a' "$dest/var/lib/tollgate/journal")
	[[ $got == "$uid $gid 750" ]] ||
		install_fail "tmpfiles.d: var/lib/tollgate/journal is uid gid mode $got, want $uid $gid 750"
	got=$(stat -c '%u %g %a' "$dest/var/backups/tollgate")
	[[ $got == "$uid $gid 700" ]] ||
		install_fail "tmpfiles.d: var/backups/tollgate is uid gid mode $got, want $uid $gid 700"
	# The backup timer starts the backup service, which backs up into that directory.
	grep -qx 'OnCalendar=hourly' "$units/tollgate-backup.timer" ||
		install_fail "tollgate-backup.timer does not fire hourly"
	grep -qx 'Persistent=true' "$units/tollgate-backup.timer" ||
		install_fail "tollgate-backup.timer is not persistent"
	grep -q "backup --dir /var/backups/tollgate --keep [0-9]" "$units/tollgate-backup.service" ||
		install_fail "tollgate-backup.service does not back up into /var/backups/tollgate with --keep"
	got=$(stat -c '%u %g %a' "$dest/etc/tollgate/tollgate.conf")
	[[ $got == "0 $gid 640" ]] ||
		install_fail "tmpfiles.d: etc/tollgate/tollgate.conf is uid gid mode $got, want 0 $gid 640"
	out=$(logrotate -d "$dest/etc/logrotate.d/tollgate" 2>&1) || install_fail "logrotate -d: $out"
	say "install: systemd-analyze verify: 7 units clean; sysusers.d, tmpfiles.d and logrotate files apply"
}

# install_snippets DESTDIR: Apache (apache2 -t) and lighttpd (lighttpd -tt) with a minimal
# server that includes the installed snippet, and again with its examples ("#| " lines)
# uncommented.
install_snippets() {
	local dest=$1 dir=$INSTALL_DIR/web m=/usr/lib/apache2/modules mod out variant
	rm -rf "$dir"
	mkdir -p "$dir"
	{
		printf 'ServerRoot "%s"\nDefaultRuntimeDir "%s"\nPidFile "%s/httpd.pid"\n' "$dir" "$dir" "$dir"
		printf 'Listen 127.0.0.1:%s\nServerName localhost\nErrorLog /dev/null\n' "$HTTP_PORT"
		for mod in mpm_event authz_core authz_host alias authnz_fcgi fcgid headers ssl proxy proxy_http; do
			printf 'LoadModule %s_module %s/mod_%s.so\n' "$mod" "$m" "$mod"
		done
		printf 'Include "%s/tollgate.conf"\n' "$dir"
	} >"$dir/httpd.conf"
	{
		printf 'server.modules = ( "mod_access", "mod_fastcgi", "mod_proxy", "mod_staticfile" )\n'
		printf 'server.document-root = "%s"\nserver.bind = "127.0.0.1"\nserver.port = %s\n' "$dir" "$HTTP_PORT"
		printf 'include "%s/15-tollgate.conf"\n' "$dir"
	} >"$dir/lighttpd.conf"
	for variant in as-installed examples; do
		# mod_fcgid wants the program to exist: the one in DESTDIR.
		sed "s|/usr/sbin/|$dest/usr/sbin/|g" "$dest/etc/apache2/conf-available/tollgate.conf" >"$dir/tollgate.conf"
		cp "$dest/etc/lighttpd/conf-available/15-tollgate.conf" "$dir/15-tollgate.conf"
		[[ $variant == as-installed ]] || sed -i 's/^#| //' "$dir/tollgate.conf" "$dir/15-tollgate.conf"
		out=$(apache2 -t -f "$dir/httpd.conf" 2>&1) || install_fail "apache2 -t ($variant): $out"
		out=$(lighttpd -tt -f "$dir/lighttpd.conf" 2>&1) || install_fail "lighttpd -tt ($variant): $out"
	done
	say "install: apache2 -t and lighttpd -tt accept the snippets, as installed and with their examples"
}

step_install() {
	local dest=$INSTALL_DIR/root t0=$SECONDS
	rm -rf "$INSTALL_DIR"
	mkdir -p "$INSTALL_DIR"
	say "install: configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var, make, make install DESTDIR=${dest#"$ROOT"/}"
	install_build "$dest"
	say "install: built and installed twice in $((SECONDS - t0)) s"
	install_tree "$dest"
	install_libs "$dest"
	install_man "$dest"
	install_units "$dest"
	install_snippets "$dest"
	say "install: done in $((SECONDS - t0)) s"
	rm -rf "$INSTALL_DIR"
}
