#!/bin/sh
# The entrypoint of contrib/Dockerfile's image, run as the tollgate account. The
# configuration is /etc/tollgate/tollgate.conf (the installed sample) with every setting
# the environment gives as TOLLGATE_<SECTION>_<KEY> (contrib/compose.yaml sets them).
#
#   pool       tollgate-fcgi responders under spawn-fcgi on /run/tollgate/fcgi.sock, and
#              lighttpd in front of them (HTTPS on 8443, with the installed snippet)
#   billingd   tollgate-billingd in the foreground
#   migrate    tollgatectl migrate, then exit
#   anything else runs as given (e.g. tollgatectl token create --role admin --name ops)
set -eu
CONF=/etc/tollgate/tollgate.conf
TLS=/run/tollgate/tls

case ${1:-pool} in
pool)
	# A certificate mounted at /etc/tollgate/tls/server.pem (certificate and key), or a
	# self-signed one made here, as Debian's snakeoil is.
	mkdir -p "$TLS"
	if [ -s /etc/tollgate/tls/server.pem ]; then
		cp /etc/tollgate/tls/server.pem "$TLS/server.pem"
	elif [ ! -s "$TLS/server.pem" ]; then
		(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$TLS/server.key" -out "$TLS/server.crt" -days 365 \
			-subj "/CN=$(hostname)" 2>/dev/null &&
			cat "$TLS/server.crt" "$TLS/server.key" >"$TLS/server.pem")
	fi
	tollgatectl -c "$CONF" config check
	spawn-fcgi -s /run/tollgate/fcgi.sock -M 0600 -F "${TOLLGATE_POOL_SIZE:-4}" \
		-- /usr/sbin/tollgate-fcgi -c "$CONF"
	exec lighttpd -D -f /usr/share/tollgate/container/lighttpd.conf
	;;
billingd)
	exec /usr/sbin/tollgate-billingd -c "$CONF"
	;;
migrate)
	exec /usr/bin/tollgatectl -c "$CONF" migrate
	;;
*)
	exec "$@"
	;;
esac
