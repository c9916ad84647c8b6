#!/bin/sh
# Makes the certificates for mutual TLS on Silverback's cluster port
# (--grpc-tls-cert-file, --grpc-tls-key-file, --grpc-tls-ca-file).
#
#   scripts/make-cluster-certs.sh OUT_DIR NODE_ID...
#
# In OUT_DIR: ca.crt and ca.key (the cluster CA; made once, reused when the
# script runs again, e.g. to add a node), node-N.crt and node-N.key for each
# NODE_ID, and operator.crt/operator.key (a client certificate that names no
# node: it may read, check health and send meta commands, never speak for a
# node). Node N's certificate carries DNS:node-N.silverback (its identity:
# peers check it instead of the address) and DNS:silverback (what a node
# joining with --join checks).
#
# Keep ca.key off the nodes: each node needs ca.crt and its own pair only.
# Needs the openssl command (Debian: apt-get install openssl).
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 OUT_DIR NODE_ID..." >&2
    exit 2
fi
out=$1
shift
days=${SILVERBACK_CERT_DAYS:-825}
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$out/ca.key" -out "$out/ca.crt" -days 3650 \
        -subj "/CN=Silverback cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# leaf NAME CN EXT_USAGE [SAN]
leaf() {
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$3"
        if [ -n "${4:-}" ]; then echo "subjectAltName=$4"; fi
    } >"$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$out/$1.key" -out "$out/$1.csr" -subj "/CN=$2" 2>/dev/null
    openssl x509 -req -in "$out/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$ext" \
        -out "$out/$1.crt" 2>/dev/null
    rm -f "$out/$1.csr" "$ext"
    echo "$out/$1.crt"
}

for id in "$@"; do
    case $id in
        '' | *[!0-9]*) echo "node id must be a number: $id" >&2; exit 2 ;;
    esac
    leaf "node-$id" "node-$id.silverback" "serverAuth,clientAuth" \
        "DNS:node-$id.silverback,DNS:silverback"
done
if [ ! -f "$out/operator.crt" ]; then
    leaf operator "silverback-operator" "clientAuth"
fi
chmod 644 "$out"/*.crt
