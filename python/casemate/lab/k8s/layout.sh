# casemate lab, k8s profile: write into this node what kubeadm v1.32 `init` leaves on disk, make
# its PKI with openssl, and start the lab's stand-in for the kubelet running the etcd static pod.
# `casemate lab up --profile k8s` streams this file into the node as `sh -s`, followed by the
# node's own part (python/casemate/lab/layout.py renders it from python/casemate/lab/kubeadm.py).
# Idempotent: a node that has $MARK already is left exactly as it is.
set -eu
umask 022
MARK=/var/lib/casemate-lab/k8s-layout
STANDIN_UNITS="casemate-lab-kubelet-standin-etcd.path casemate-lab-kubelet-standin-etcd.service"
if [ -e "$MARK" ]; then
    echo "kept: $(cat "$MARK")"
    exit 0
fi
# scratch space on disk: systemd empties /tmp while the node boots, which may be right now
mkdir -p /var/lib/casemate-lab
WORK=$(mktemp -d /var/lib/casemate-lab/layout.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PIDS=

say() { echo "casemate-lab-layout: $*" >&2; }

# put MODE PATH < CONTENT: a root:root file, never readable by others while it is written
put() {
    rm -f "$2"
    (umask 077 && cat >"$2")
    chown root:root "$2"
    chmod "$1" "$2"
}

# dir MODE PATH: a root:root directory
dir() {
    mkdir -p "$2"
    chown root:root "$2"
    chmod "$1" "$2"
}

# key rsa|ec PATH: RSA 2048 as PKCS#1 ("RSA PRIVATE KEY", as kubeadm writes it) or P-256 as SEC1
# ("EC PRIVATE KEY", as the kubelet writes it), mode 0600
key() {
    case "$1" in
        rsa) (umask 077 && openssl genrsa -traditional -out "$2" 2048 2>"$2.err") ;;
        ec) (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$2" 2>"$2.err") ;;
    esac || { cat "$2.err" >&2; return 1; }
    rm -f "$2.err"
    chmod 0600 "$2"
}

# bg COMMAND...: run in the background (keys are made in parallel); join waits for all of them
bg() {
    "$@" &
    PIDS="$PIDS $!"
}
join() {
    for pid in $PIDS; do
        wait "$pid" || { say "making a key failed"; exit 1; }
    done
    PIDS=
}

# utc UNIX-TIME: ASN.1 UTCTime, as openssl ca takes it
utc() { date -u -d "@$1" +%y%m%d%H%M%SZ; }

# sign STEM ISSUER DAYS BACKDATE SUBJECT < [ext] section: STEM.crt for STEM.key, issued by
# ISSUER.crt/.key ("" = self-signed), valid from BACKDATE seconds before $NOW for DAYS days
sign() {
    stem=$1 issuer=$2 days=$3 back=$4
    cat >"$WORK/ext"
    openssl req -new -key "$stem.key" -subj "$5" -out "$WORK/csr"
    if [ -z "$issuer" ]; then
        set -- -selfsign -keyfile "$stem.key"
    else
        set -- -cert "$issuer.crt" -keyfile "$issuer.key"
    fi
    openssl ca -batch -notext -config "$WORK/ca.cnf" "$@" -in "$WORK/csr" -out "$stem.crt" \
        -extfile "$WORK/ext" -extensions ext \
        -startdate "$(utc $((NOW - back)))" -enddate "$(utc $((NOW + days * 86400)))" \
        >"$WORK/ca.log" 2>&1 || { cat "$WORK/ca.log" >&2; exit 1; }
    chown root:root "$stem.crt"
    chmod 0644 "$stem.crt"
}

# kubeconfig PATH [CERT-STEM] < TEMPLATE: fill in the cluster CA and the embedded client
# certificate and key (base64 of their PEM), mode 0600
kubeconfig() {
    ca=$(base64 -w0 /etc/kubernetes/pki/ca.crt)
    crt= k=
    if [ -n "${2:-}" ]; then
        crt=$(base64 -w0 "$2.crt")
        k=$(base64 -w0 "$2.key")
    fi
    sed -e "s|CASEMATE_FILL_CA_DATA|$ca|" -e "s|CASEMATE_FILL_CERT_DATA|$crt|" \
        -e "s|CASEMATE_FILL_KEY_DATA|$k|" | put 0600 "$1"
}

# systemd_up: wait (30 s at most) until the node's systemd answers; it may still be booting
systemd_up() {
    i=0
    while :; do
        state=$(systemctl is-system-running 2>/dev/null || true)
        case "$state" in
            "" | offline | unknown) ;;
            *) return 0 ;;
        esac
        i=$((i + 1))
        [ "$i" -lt 150 ] || { say "systemd does not answer"; exit 1; }
        sleep 0.2
    done
}

# openssl ca's scratch state: every certificate gets a random serial; etcd's server and peer
# certificates share their subject, as kubeadm's do
mkdir "$WORK/new"
: >"$WORK/index.txt"
cat >"$WORK/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
database = $WORK/index.txt
new_certs_dir = $WORK/new
rand_serial = yes
default_md = sha256
policy = policy
unique_subject = no
email_in_dn = no
[policy]
organizationName = optional
commonName = supplied
EOF

# an interrupted earlier run: stop what it may have started, start from scratch
systemctl stop $STANDIN_UNITS >/dev/null 2>&1 || true
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd

# kubeadm nodes have no etcd user or group (Debian's etcd-server package made them)
if getent passwd etcd >/dev/null; then userdel etcd; fi
if getent group etcd >/dev/null; then groupdel etcd; fi

# --- the node's part follows ---
