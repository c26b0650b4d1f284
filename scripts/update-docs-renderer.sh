#!/usr/bin/env bash
# update-docs-renderer.sh [version]: replaces the API reference's renderer, Redoc's standalone
# bundle from npm, which internal/apidocs embeds into the binary (so /docs works offline).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-2.5.4}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "redoc@$version" >/dev/null && tar xzf "redoc-$version.tgz")
cp "$tmp/package/bundles/redoc.standalone.js" internal/apidocs/assets/redoc.standalone.js
cp "$tmp/package/LICENSE" internal/apidocs/assets/redoc.LICENSE
sed -i "s/^const RedocVersion = .*/const RedocVersion = \"$version\"/" internal/apidocs/apidocs.go
echo "Redoc $version is in internal/apidocs/assets"
