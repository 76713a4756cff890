using WeakSeg.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class ImageCodecTests
{
    [Fact]
    public void Grayscale_jpeg_is_converted_to_rgb()
    {
        var jpeg = VocTestData.GrayJpeg(16, 8, (x, y) => (byte)(x < 8 ? 40 : 200));
        // It really is a single-component JPEG: SOF0/SOF1 with Nf = 1.
        int sof = FindMarker(jpeg, 0xC0) >= 0 ? FindMarker(jpeg, 0xC0) : FindMarker(jpeg, 0xC1);
        Assert.True(sof >= 0);
        Assert.Equal(1, jpeg[sof + 9]);
        var img = ImageCodec.Decode(jpeg, "gray.jpg");
        Assert.Equal((16, 8), (img.Width, img.Height));
        AssertPixel(img, 2, 3, 40, 40, 40, 2);
        AssertPixel(img, 13, 5, 200, 200, 200, 2);
    }

    [Fact]
    public void Cmyk_jpeg_with_adobe_marker_is_converted_to_rgb()
    {
        // Adobe CMYK JPEGs store inverted values: RGB = (C·K, M·K, Y·K) / 255 of the stored bytes.
        var jpeg = CmykJpeg.Build([(200, 100, 50, 255), (255, 255, 255, 128), (255, 0, 255, 255)]);
        var img = ImageCodec.Decode(jpeg, "cmyk.jpg");
        Assert.Equal((24, 8), (img.Width, img.Height));
        AssertPixel(img, 3, 4, 200, 100, 50, 2);
        AssertPixel(img, 12, 1, 128, 128, 128, 2);
        AssertPixel(img, 20, 7, 255, 0, 255, 2);
    }

    [Fact]
    public void Truncated_jpeg_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("broken.jpg");
        var (img, _) = VocTestData.Blocks(64, 48, 8, 3, 1);
        var bytes = ImageCodec.Encode(img, SkiaSharp.SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<WeakSegException>(() => ImageCodec.Load(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    static int FindMarker(byte[] b, byte m)
    {
        for (int i = 2; i + 1 < b.Length; i++) if (b[i] == 0xFF && b[i + 1] == m) return i;
        return -1;
    }

    static void AssertPixel(RgbImage img, int x, int y, int r, int g, int b, int tol)
    {
        int p = 3 * (y * img.Width + x);
        Assert.InRange(img.Pixels[p], r - tol, r + tol);
        Assert.InRange(img.Pixels[p + 1], g - tol, g + tol);
        Assert.InRange(img.Pixels[p + 2], b - tol, b + tol);
    }
}
