using WeakSeg.Data;

namespace WeakSeg.Tests.Data;

public class TrainTransformTests
{
    static readonly float[] Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f];

    [Fact]
    public void Identity_geometry_normalises_each_pixel_with_imagenet_mean_and_std()
    {
        var img = new RgbImage(4, 4);
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 37 % 256);
        img.Pixels[0] = 255; img.Pixels[1] = 0; img.Pixels[2] = 128;
        var t = TrainTransform.None(4);
        var rng = new DeterministicRandom(1);
        var chw = new float[48];
        t.Apply(img, null, ref rng, chw, default);
        Assert.Equal(2.2489083f, chw[0], 5);   // (1 − 0.485) / 0.229
        Assert.Equal(-2.0357143f, chw[16], 5); // (0 − 0.456) / 0.224
        Assert.Equal(0.4264923f, chw[32], 5);  // (128/255 − 0.406) / 0.225
        for (int p = 0; p < 16; p++)
            for (int c = 0; c < 3; c++)
                Assert.Equal((img.Pixels[3 * p + c] / 255f - Mean[c]) / Std[c], chw[c * 16 + p], 1e-5f);
    }

    [Fact]
    public void Flip_mirrors_image_and_mask_columns()
    {
        var img = new RgbImage(5, 5);
        var mask = new LabelMap(5, 5);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 5; x++)
            {
                int p = y * 5 + x;
                img.Pixels[3 * p] = (byte)(10 * x); img.Pixels[3 * p + 1] = (byte)(40 * y); img.Pixels[3 * p + 2] = (byte)(x * y);
                mask[x, y] = (byte)p;
            }
        var t = TrainTransform.None(5) with { HorizontalFlipProbability = 1 };
        var rng = new DeterministicRandom(3);
        var chw = new float[75];
        var outMask = new byte[25];
        t.Apply(img, mask, ref rng, chw, outMask);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 5; x++)
            {
                int src = y * 5 + (4 - x), dst = y * 5 + x;
                Assert.Equal((byte)src, outMask[dst]);
                for (int c = 0; c < 3; c++)
                    Assert.Equal((img.Pixels[3 * src + c] / 255f - Mean[c]) / Std[c], chw[c * 25 + dst], 1e-5f);
            }
    }

    [Theory]
    [InlineData(CropMode.RandomResizedCrop)]
    [InlineData(CropMode.RandomScaleCrop)]
    public void Mask_and_image_stay_aligned_for_many_seeds(CropMode mode)
    {
        // Pixel colour encodes the class: wherever the image filter's footprint lies inside one block, the transformed
        // pixel must have that block's colour and the transformed mask that block's class.
        const int block = 12, s = 48;
        var (img, mask) = VocTestData.Blocks(60, 44, block, 5, seed: 7);
        var t = new TrainTransform { CropSize = s, Mode = mode, Brightness = 0, Contrast = 0, Saturation = 0 };
        var chw = new float[3 * s * s];
        var outMask = new byte[s * s];
        long checkedPixels = 0, padPixels = 0, flips = 0;
        for (int seed = 0; seed < 60; seed++)
        {
            var rng = new DeterministicRandom(seed, 0, 0);
            var copy = rng;
            var g = t.SampleGeometry(img.Width, img.Height, ref copy);
            if (g.Flip) flips++;
            t.Apply(img, mask, ref rng, chw, outMask);
            double rx = Math.Max(g.ScaleX, 1), ry = Math.Max(g.ScaleY, 1);
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++)
                {
                    int xs = g.Flip ? s - 1 - x : x;
                    double cx = g.OffsetX + (xs + 0.5) * g.ScaleX, cy = g.OffsetY + (y + 0.5) * g.ScaleY;
                    int p = y * s + x;
                    if (cx < 0 || cx >= img.Width || cy < 0 || cy >= img.Height)
                    {
                        Assert.Equal(255, outMask[p]);
                        Assert.Equal(0f, chw[p]); Assert.Equal(0f, chw[s * s + p]); Assert.Equal(0f, chw[2 * s * s + p]);
                        padPixels++;
                        continue;
                    }
                    Assert.Equal(mask[(int)cx, (int)cy], outMask[p]); // nearest neighbour, brute force
                    int bx0 = (int)Math.Floor(Math.Max(0, cx - rx) / block), bx1 = (int)Math.Floor(Math.Min(img.Width - 1e-9, cx + rx) / block);
                    int by0 = (int)Math.Floor(Math.Max(0, cy - ry) / block), by1 = (int)Math.Floor(Math.Min(img.Height - 1e-9, cy + ry) / block);
                    if (bx0 != bx1 || by0 != by1) continue; // footprint straddles blocks: colour is a blend
                    var (r, gg, b) = VocTestData.ClassColour(outMask[p]);
                    Assert.Equal(r / 255f, chw[p] * Std[0] + Mean[0], 3);
                    Assert.Equal(gg / 255f, chw[s * s + p] * Std[1] + Mean[1], 3);
                    Assert.Equal(b / 255f, chw[2 * s * s + p] * Std[2] + Mean[2], 3);
                    checkedPixels++;
                }
        }
        Assert.True(checkedPixels > 60 * s * s / 4, $"only {checkedPixels} pixels checked");
        Assert.InRange(flips, 15, 45);
        if (mode == CropMode.RandomScaleCrop) Assert.True(padPixels > 1000, $"only {padPixels} padding pixels");
    }

    [Fact]
    public void Scale_crop_pads_image_with_mean_and_mask_with_255()
    {
        // Scale 0.5: the 40×32 image becomes 20×16 inside a 48×48 crop; everything else is padding.
        var (img, mask) = VocTestData.Blocks(40, 32, 8, 3, seed: 2);
        var t = new TrainTransform { CropSize = 48, Mode = CropMode.RandomScaleCrop, MinRescale = 0.5, MaxRescale = 0.5, HorizontalFlipProbability = 0, Brightness = 0, Contrast = 0, Saturation = 0 };
        var rng = new DeterministicRandom(9);
        var chw = new float[3 * 48 * 48];
        var outMask = new byte[48 * 48];
        t.Apply(img, mask, ref rng, chw, outMask);
        Assert.Equal(48 * 48 - 20 * 16, outMask.Count(v => v == 255));
        int zeroPixels = Enumerable.Range(0, 48 * 48).Count(p => chw[p] == 0 && chw[2304 + p] == 0 && chw[4608 + p] == 0);
        Assert.Equal(48 * 48 - 20 * 16, zeroPixels);
    }

    [Fact]
    public void Colour_jitter_keeps_what_each_operation_preserves()
    {
        // Mid-range colours so nothing clamps. Saturation keeps every pixel's grey value; contrast keeps the mean grey;
        // brightness scales all values by one factor in [0.6, 1.4].
        var img = new RgbImage(8, 8);
        var rnd = new Random(4);
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)rnd.Next(90, 170);
        float[] Run(TrainTransform t, int seed)
        {
            var rng = new DeterministicRandom(seed);
            var chw = new float[192];
            t.Apply(img, null, ref rng, chw, default);
            var rgb = new float[192];
            for (int p = 0; p < 64; p++) for (int c = 0; c < 3; c++) rgb[3 * p + c] = chw[c * 64 + p] * Std[c] + Mean[c];
            return rgb;
        }
        float Gray(float[] a, int p) => 0.2989f * a[3 * p] + 0.587f * a[3 * p + 1] + 0.114f * a[3 * p + 2];
        var plain = Run(TrainTransform.None(8), 0);
        for (int seed = 1; seed <= 5; seed++)
        {
            var sat = Run(TrainTransform.None(8) with { Saturation = 0.4 }, seed);
            Assert.NotEqual(plain, sat);
            for (int p = 0; p < 64; p++) Assert.Equal(Gray(plain, p), Gray(sat, p), 1e-4f);

            var con = Run(TrainTransform.None(8) with { Contrast = 0.4 }, seed);
            Assert.NotEqual(plain, con);
            Assert.Equal(Enumerable.Range(0, 64).Average(p => Gray(plain, p)), Enumerable.Range(0, 64).Average(p => Gray(con, p)), 1e-4);

            var bri = Run(TrainTransform.None(8) with { Brightness = 0.4 }, seed);
            float f = bri[0] / plain[0];
            Assert.InRange(f, 0.6f, 1.4f);
            for (int i = 0; i < 192; i++) Assert.Equal(plain[i] * f, bri[i], 1e-4f);
        }
    }

    [Fact]
    public void Same_rng_seed_gives_identical_output()
    {
        var (img, mask) = VocTestData.Blocks(50, 40, 8, 3, seed: 3);
        var t = new TrainTransform { CropSize = 32 };
        float[] a = new float[3072], b = new float[3072];
        byte[] ma = new byte[1024], mb = new byte[1024];
        var r1 = new DeterministicRandom(5, 2, 7); var r2 = new DeterministicRandom(5, 2, 7); var r3 = new DeterministicRandom(5, 2, 8);
        t.Apply(img, mask, ref r1, a, ma);
        t.Apply(img, mask, ref r2, b, mb);
        Assert.Equal(a, b); Assert.Equal(ma, mb);
        t.Apply(img, mask, ref r3, b, mb);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void Eval_transform_downscale_averages_like_an_area_filter_for_integer_factors()
    {
        // Halving with the antialiased triangle filter (radius 2 source px) on a 2-px checker of 0/255 columns gives 127.5 everywhere inside.
        var img = new RgbImage(8, 8);
        for (int y = 0; y < 8; y++) for (int x = 0; x < 8; x++) for (int c = 0; c < 3; c++) img.Pixels[3 * (y * 8 + x) + c] = (byte)(x % 2 == 0 ? 0 : 255);
        var (chw, h, w) = new EvalTransform { Width = 4, Height = 4 }.Apply(img);
        Assert.Equal((4, 4), (h, w));
        for (int x = 1; x < 3; x++) Assert.Equal((0.5f - Mean[0]) / Std[0], chw[2 * 4 + x], 4);
        var m = new LabelMap(8, 8); m[7, 7] = 5; m[6, 6] = 4;
        var small = new EvalTransform { Width = 4, Height = 4 }.ApplyToMask(m);
        Assert.Equal(5, small[3, 3]); // nearest: output centre 3.5 ↦ source 7.0 → pixel 7
    }
}
