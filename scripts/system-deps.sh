#!/bin/sh
# Debian packages streamer's live outputs and tests use (tesseract-ocr: `streamer eval-signs`).
# Without root or apt this says what is missing and returns 0: the tests that need them skip.
PKGS="ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools chromium tesseract-ocr"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # install what this distribution has: Ubuntu (a Jetson's too) names chromium chromium-browser,
  # and one unknown name must not stop the rest
  known="" unknown=""
  for p in $missing; do
    [ "$p" = chromium ] && ! apt-cache show chromium >/dev/null 2>&1 && p=chromium-browser
    if apt-cache show "$p" >/dev/null 2>&1; then known="$known $p"; else unknown="$unknown $p"; fi
  done
  [ -n "$unknown" ] && echo "warning: this distribution has no package:$unknown (tests needing it will skip)" >&2
  [ -z "$known" ] && exit 0
  apt-get install -y -q $known >/dev/null && exit 0
  echo "warning: apt-get could not install:$known (tests needing them will skip)" >&2
else
  echo "note: not root or no apt-get; missing:$missing (tests needing them will skip)" >&2
fi
exit 0
