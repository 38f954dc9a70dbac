# shellcheck shell=bash
# Source me: `. scripts/toolchain/env.sh` (bash or zsh). Points the shell at the toolchain that
# scripts/toolchain/install.sh put in the cache and at the local control plane of controlplane.sh.
STREAMSTACK_CACHE="${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"
export STREAMSTACK_CACHE
case ":$PATH:" in *":$STREAMSTACK_CACHE/bin:"*) ;; *) export PATH="$STREAMSTACK_CACHE/bin:$PATH";; esac
case ":$PATH:" in *":/usr/local/go/bin:"*) ;; *) export PATH="$PATH:/usr/local/go/bin";; esac
export KUBECONFIG="$STREAMSTACK_CACHE/kubeconfig"
export STREAMSTACK_REGISTRY="127.0.0.1:${STREAMSTACK_REGISTRY_PORT:-5001}"
