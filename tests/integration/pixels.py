"""pixels.py PNG X,Y...: the colour of each pixel asked for, as #rrggbb, one
per line (PIL, from Debian's python3-pil)."""
import sys

from PIL import Image

img = Image.open(sys.argv[1]).convert("RGB")
for xy in sys.argv[2:]:
    x, y = (int(v) for v in xy.split(","))
    print("#%02x%02x%02x" % img.getpixel((x, y)))
