#!/usr/bin/env bash
# Opt-in check of the page served by `megafs serve` in a real browser (not part of CI):
# starts the server on the demo models (./models, made by `bash scripts/demo.sh`) on a free
# loopback port, drives Debian's chromium headless through chromedriver (selenium from PyPI):
# picks the sample source, target and label map, presses Swap, waits for the result and the
# timings table, then provokes an error (a text file as the source) and checks that it is shown
# in words. Saves out/server-page.png (after the swap) and out/server-page-error.png.
# Installs chromium, chromium-driver and selenium when missing.
#   bash scripts/browser-check.sh            (MEGAFS_BIN=.build-x/release/megafs to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f models/encoder.mfs ] || { echo "no ./models: run bash scripts/demo.sh first" >&2; exit 1; }
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
python3 -c "import selenium" 2>/dev/null || pip install -q "selenium<4.40"   # 4.40+ need a certifi newer than the package index here offers
# MEGAFS_BIN=path/to/megafs skips the build.
bin=${MEGAFS_BIN:-}
if [ -z "$bin" ]; then
  swift build -c release --product megafs
  bin=.build/release/megafs
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p out
"$bin" serve --models models --port "$port" --log-level warning &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "server not ready" >&2; exit 1; }

python3 - "$port" <<'PY'
import os, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

port = sys.argv[1]
root = os.getcwd()
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1150"]:
    options.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.get(f"http://127.0.0.1:{port}/")
    samples = os.path.join(root, "examples/samples")
    driver.find_element(By.ID, "source").send_keys(os.path.join(samples, "synthetic_face.png"))
    driver.find_element(By.ID, "target").send_keys(os.path.join(samples, "astronaut_face.png"))
    driver.find_element(By.ID, "target_mask").send_keys(os.path.join(samples, "astronaut_face_labels.png"))
    driver.find_element(By.ID, "swap").click()
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done") or d.find_element(By.ID, "error").text)
    error = driver.find_element(By.ID, "error").text
    assert not error, f"the page shows an error: {error}"
    size = driver.execute_script("const i = document.getElementById('result'); return [i.naturalWidth, i.naturalHeight];")
    assert size == [256, 256], f"result image is {size}"
    stages = [r.text.split()[0] for r in driver.find_elements(By.CSS_SELECTOR, "#timings tbody tr")]
    for s in ["decode", "encode", "generate", "blend", "round"]:
        assert s in stages, f"timings lack {s}: {stages}"
    assert driver.find_element(By.ID, "download").is_displayed()
    driver.save_screenshot(os.path.join(root, "out/server-page.png"))
    print("swap in the page: ok,", driver.find_element(By.ID, "status").text, "; stages:", ", ".join(stages))

    bogus = os.path.join(root, "out/not-an-image.txt")
    with open(bogus, "w") as f:
        f.write("hello\n")
    driver.find_element(By.ID, "source").send_keys(bogus)
    driver.find_element(By.ID, "swap").click()
    wait.until(lambda d: d.find_element(By.ID, "error").text)
    message = driver.find_element(By.ID, "error").text
    assert "neither PNG nor JPEG" in message and "422" in message, message
    driver.save_screenshot(os.path.join(root, "out/server-page-error.png"))
    print("error in the page: ok:", message)
finally:
    driver.quit()
PY
echo "screenshots: out/server-page.png, out/server-page-error.png"
