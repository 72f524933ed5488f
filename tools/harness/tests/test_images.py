import tempfile
import unittest
from pathlib import Path

from harness import images


class ImagesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.img = images.make(Path(self.dir.name), data_bytes=5000, scratch_total=4096,
                               scratch_offset=1024, scratch_bytes=1024, readonly_bytes=700)

    def write(self, path, offset, data):
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def test_made_as_described(self):
        self.assertEqual(self.img.data.stat().st_size, 5000)
        self.assertEqual(self.img.scratch.read_bytes(), bytes(4096))
        self.assertEqual(images.sha256(self.img.readonly), self.img.readonly_sha)
        self.assertIsNone(images.check_data(self.img))
        self.assertIsNone(images.check_readonly(self.img))

    def test_a_changed_image(self):
        self.write(self.img.data, 4999, b"\0" if self.img.data.read_bytes()[-1] else b"\1")
        self.assertIn("changed although the guest only read it", images.check_data(self.img))
        self.write(self.img.readonly, 0, b"\xff" * 700)
        self.assertIn("the read-only image", images.check_readonly(self.img))

    def test_scratch(self):
        data = bytes(range(256)) * 4
        self.write(self.img.scratch, 1024, data)
        want = images.sha256(self.img.scratch, 1024, 1024)
        self.assertIsNone(images.check_scratch(self.img, want))
        self.assertIn("the guest wrote 00", images.check_scratch(self.img, "00" * 32))
        self.assertIn("no 'host: blk-scratch-sha256=' line", images.check_scratch(self.img, ""))
        self.write(self.img.scratch, 1023, b"\1")
        self.write(self.img.scratch, 4095, b"\1")
        self.assertIn("has 2 non-zero bytes outside the 1024 the guest wrote at 1024",
                      images.check_scratch(self.img, want))

    def test_nonzero_outside_across_chunks(self):
        path = Path(self.dir.name) / "big"
        size = 3 * images.MiB + 5
        with open(path, "wb") as f:
            f.truncate(size)
        self.write(path, images.MiB - 1, b"\1\1")  # one byte before the range, one inside
        self.write(path, 2 * images.MiB + 1, b"\1")  # the range's last byte
        self.write(path, size - 1, b"\1")
        self.assertEqual(images.nonzero_outside(path, images.MiB, images.MiB + 2), 2)


if __name__ == "__main__":
    unittest.main()
