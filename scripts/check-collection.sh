#!/bin/sh
# Check a built casemate.hardening tarball as a collection: unpacked into a temporary
# ansible_collections/casemate/hardening tree, then
#   sanity: `ansible-test sanity` with the tests that run offline, with no requirements installed
#           (the others need a virtualenv with pip and packages from PyPI; see docs/fleet.md);
#   lint:   ansible-lint (profile shared) with the collection on ANSIBLE_COLLECTIONS_PATH.
# Usage: scripts/check-collection.sh sanity|lint|all dist/casemate-hardening-VERSION.tar.gz
# ansible-test, ansible-lint and python are the ones on PATH (make puts the venv's first).
set -eu
what=$1
tarball=$(realpath "$2")
SANITY_TESTS="action-plugin-docs compile ignores line-endings no-assert no-get-exception
no-illegal-filenames no-smart-quotes replace-urlopen shebang symlinks use-argspec-type-path
use-compat-six"
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')

top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
tree="$top/ansible_collections/casemate/hardening"
mkdir -p "$tree"
tar -xzf "$tarball" -C "$tree"

if [ "$what" = sanity ] || [ "$what" = all ]; then
    args=""
    for t in $SANITY_TESTS; do args="$args --test $t"; done
    # shellcheck disable=SC2086 # one word per test
    (cd "$tree" && ansible-test sanity --python "$python" $args)
fi
if [ "$what" = lint ] || [ "$what" = all ]; then
    # the tarball holds MANIFEST.json; ansible-lint reads a collection's galaxy.yml
    python3 -c 'import json, sys, yaml
info = json.load(open(sys.argv[1]))["collection_info"]
keep = ("namespace", "name", "version", "readme", "authors", "description", "license", "tags")
class Dumper(yaml.SafeDumper):  # lists indented, as yamllint wants them
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)
out = open(sys.argv[2], "w")
out.write("---\n")
yaml.dump({k: info[k] for k in keep}, out, Dumper=Dumper, sort_keys=False)' \
        "$tree/MANIFEST.json" "$tree/galaxy.yml"
    # ansible-lint syntax-checks each role as a role on a roles path, where Ansible looks for its
    # modules in the role's library/: point it at the collection's own plugins instead.
    # galaxy[no-repository]: casemate has no public repository URL to name yet.
    (cd "$tree" && ANSIBLE_COLLECTIONS_PATH="$top" ANSIBLE_ROLES_PATH="$tree/roles" \
        ANSIBLE_LIBRARY="$tree/plugins/modules" ANSIBLE_MODULE_UTILS="$tree/plugins/module_utils" \
        ansible-lint --offline --profile shared -q --skip-list 'galaxy[no-repository]')
fi
