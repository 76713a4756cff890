using SkiaSharp;
using WeakSeg.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class LabelPngTests
{
    [Fact]
    public void Voc_palette_matches_the_devkit_colours()
    {
        Assert.Equal(((byte)0, (byte)0, (byte)0), VocPalette.Color(0));
        Assert.Equal(((byte)128, (byte)0, (byte)0), VocPalette.Color(1));     // aeroplane
        Assert.Equal(((byte)0, (byte)128, (byte)0), VocPalette.Color(2));     // bicycle
        Assert.Equal(((byte)192, (byte)128, (byte)128), VocPalette.Color(15)); // person
        Assert.Equal(((byte)0, (byte)64, (byte)128), VocPalette.Color(20));   // tvmonitor
        Assert.Equal(((byte)224, (byte)224, (byte)192), VocPalette.Color(255)); // ignore border
        Assert.Equal(15, VocPalette.IndexOf(192, 128, 128));
    }

    [Fact]
    public void Palette_png_round_trips_every_index_value()
    {
        var mask = new LabelMap(17, 16);
        for (int i = 0; i < mask.Labels.Length; i++) mask.Labels[i] = (byte)(i * 7 % 256);
        var png = LabelPng.Encode(mask);
        var back = LabelPng.Decode(png);
        Assert.Equal(17, back.Width); Assert.Equal(16, back.Height);
        Assert.Equal(mask.Labels, back.Labels);
        // Skia (an independent decoder) sees the VOC colours of those indices.
        using var bmp = SKBitmap.Decode(png);
        var c = bmp.GetPixel(3, 0); // index 21
        var (r, g, b) = VocPalette.Color(21);
        Assert.Equal((r, g, b), (c.Red, c.Green, c.Blue));
    }

    [Fact]
    public void Reads_grayscale_and_rgb_masks_written_by_another_encoder()
    {
        // Grayscale PNG (SegmentationClassAug style) written by Skia with its own filters.
        var info = new SKImageInfo(9, 5, SKColorType.Gray8, SKAlphaType.Opaque);
        using var gray = new SKBitmap(info);
        var expected = new byte[45];
        for (int y = 0; y < 5; y++) for (int x = 0; x < 9; x++)
        {
            byte v = (byte)((x + 3 * y) % 4 == 0 ? 255 : (x * y) % 21);
            expected[y * 9 + x] = v;
            gray.SetPixel(x, y, new SKColor(v, v, v));
        }
        using var grayPng = SKImage.FromBitmap(gray).Encode(SKEncodedImageFormat.Png, 100);
        Assert.Equal(expected, LabelPng.Decode(grayPng.ToArray()).Labels);

        // RGB mask painted in VOC colours.
        using var rgb = new SKBitmap(new SKImageInfo(4, 2, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var idx = new byte[] { 0, 1, 2, 15, 20, 255, 7, 0 };
        for (int i = 0; i < 8; i++) { var (r, g, b) = VocPalette.Color(idx[i]); rgb.SetPixel(i % 4, i / 4, new SKColor(r, g, b)); }
        using var rgbPng = SKImage.FromBitmap(rgb).Encode(SKEncodedImageFormat.Png, 100);
        Assert.Equal(idx, LabelPng.Decode(rgbPng.ToArray()).Labels);
    }

    [Fact]
    public void Truncated_or_corrupt_mask_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("2007_000032.png");
        var png = LabelPng.Encode(new LabelMap(8, 8));
        File.WriteAllBytes(path, png[..(png.Length - 20)]);
        var e = Assert.Throws<WeakSegException>(() => LabelPng.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        png[40] ^= 0xFF; // flip a byte inside a chunk: CRC fails
        File.WriteAllBytes(path, png);
        e = Assert.Throws<WeakSegException>(() => LabelPng.Read(path));
        Assert.Contains("CRC", e.Message);
    }

    [Fact]
    public void Rgb_image_png_round_trip_is_exact()
    {
        var img = new RgbImage(5, 3);
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 13);
        var png = ImageCodec.Encode(img, SKEncodedImageFormat.Png);
        var back = ImageCodec.Decode(png, "mem.png");
        Assert.Equal(img.Pixels, back.Pixels);
    }
}
