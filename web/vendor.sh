#!/bin/sh
# Copy the pinned lightweight-charts release (package-lock.json) into the package's static folder, so that
# `pivotal serve` works with no internet and neither CI nor a user needs npm. Run after changing the version:
#   cd web && npm install --save-exact lightweight-charts@X.Y.Z && sh vendor.sh      (or: make web-vendor)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/../src/pivotal/api/static/vendor"
cd "$here"
npm ci --no-audit --no-fund
mkdir -p "$dest"
cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js "$dest/"
cp node_modules/lightweight-charts/LICENSE "$dest/LICENSE-lightweight-charts.txt"
version=$(node -p "require('./node_modules/lightweight-charts/package.json').version")
fancy=$(node -p "require('./node_modules/fancy-canvas/package.json').version")
cat > "$dest/VENDORED.txt" <<TXT
lightweight-charts $version (Apache-2.0, LICENSE-lightweight-charts.txt), from the npm registry, pinned in
web/package-lock.json; the standalone build bundles fancy-canvas $fancy (MIT, TradingView, Inc.).
Update: web/vendor.sh (make web-vendor).
TXT
echo "vendored lightweight-charts $version into $dest"
