using System.Numerics;
using System.Runtime.InteropServices;
using WeakSeg.Interop;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Refinement.Saliency;

/// <summary>
/// WeakSeg's spectral-residual estimator against OpenCV contrib's <c>StaticSaliencySpectralResidual</c>
/// (tests/fixtures/saliency/README.md), and against hand computations of its steps.
/// </summary>
public class SpectralResidualTests
{
    const double Tolerance = 1e-4;

    static SafetensorsFile Fixture => SafetensorsFile.Read(TestPaths.Fixture("saliency", "spectral_residual.safetensors"));

    static float[] Floats(SafetensorsFile file, string name)
    {
        var t = file.Tensors[name];
        Assert.Equal(SafetensorsDtype.F32, t.Dtype);
        return MemoryMarshal.Cast<byte, float>(t.Data).ToArray();
    }

    public static TheoryData<string> FullCases => ["random", "disc", "square", "constant", "single_pixel", "tiny"];

    [Theory]
    [MemberData(nameof(FullCases))]
    public void Estimate_matches_OpenCV_contrib_on_the_whole_map(string name)
    {
        var fixture = Fixture;
        var (_, height, width) = SaliencyFixtureImages.Cases.Single(c => c.Name == name);
        var rgb = SaliencyFixtureImages.Image(name, height, width);
        Assert.Equal(fixture.Metadata[name + ".input_fnv1a"], SaliencyFixtureImages.Checksum(rgb));
        Assert.Equal(new long[] { height, width }, fixture.Tensors[name].Shape);
        var expected = Floats(fixture, name);
        var actual = SaliencyMaps.Estimate(rgb, height, width);
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= Tolerance, $"{name}: largest difference {worst}");
        // the map before WeakSeg's min-max normalisation, where the fixture keeps it: float rounding only
        if (fixture.Tensors.ContainsKey(name + ".raw"))
        {
            var raw = Floats(fixture, name + ".raw");
            var computed = SpectralResidual.Compute(rgb, height, width);
            double worstRaw = raw.Zip(computed).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(worstRaw <= 1e-6, $"{name}.raw: largest difference {worstRaw}");
        }
    }

    [Fact]
    public void Estimate_matches_OpenCV_contrib_on_a_500x375_image_at_every_5th_pixel()
    {
        var fixture = Fixture;
        const int height = 375, width = 500, stride = SaliencyFixtureImages.LargeStride;
        var rgb = SaliencyFixtureImages.Image("large", height, width);
        Assert.Equal(fixture.Metadata["large.input_fnv1a"], SaliencyFixtureImages.Checksum(rgb));
        Assert.Equal(stride.ToString(), fixture.Metadata["large_stride"]);
        var expected = Floats(fixture, "large");
        var actual = SaliencyMaps.Estimate(rgb, height, width);
        int rows = (height + stride - 1) / stride, columns = (width + stride - 1) / stride;
        Assert.Equal(new long[] { rows, columns }, fixture.Tensors["large"].Shape);
        double worst = 0;
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < columns; x++)
                worst = Math.Max(worst, Math.Abs(expected[y * columns + x] - actual[y * stride * width + x * stride]));
        Assert.True(worst <= Tolerance, $"largest difference {worst}");
        Assert.Equal(double.Parse(fixture.Metadata["large.mean"], System.Globalization.CultureInfo.InvariantCulture), actual.Average(v => (double)v), 5);
    }

    [Fact]
    public void Grey_uses_OpenCVs_fixed_point_weights()
    {
        byte[] rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 37, 37, 37, 10, 20, 30];
        // 255·9798/2¹⁵ = 76.2, 255·19235/2¹⁵ = 149.7, 255·3735/2¹⁵ = 29.1; equal channels keep their value;
        // (10·9798 + 20·19235 + 30·3735 + 2¹⁴) / 2¹⁵ = 18.14
        Assert.Equal(new byte[] { 76, 150, 29, 255, 37, 18 }, SpectralResidual.Grey(rgb));
    }

    [Fact]
    public void Byte_resize_has_half_pixel_centres_edge_clamping_and_rounds_halves_up()
    {
        // 1×2 → 1×4: source positions −0.25 (clamped to pixel 0), 0.25, 0.75, 1.25 (clamped to pixel 1)
        Assert.Equal(new byte[] { 0, 25, 75, 100 }, SpectralResidual.ResizeBytesLinear([0, 100], 1, 2, 1, 4));
        // halving a ramp 0, 1, …, 127: each output is the mean of a 2×2 block, 2x + 0.5, rounded up
        var ramp = new byte[128 * 128];
        for (int i = 0; i < ramp.Length; i++) ramp[i] = (byte)(i % 128);
        var half = SpectralResidual.ResizeBytesLinear(ramp, 128, 128, 64, 64);
        for (int i = 0; i < half.Length; i++) Assert.Equal(2 * (i % 64) + 1, half[i]);
        // a single pixel fills the whole output
        Assert.All(SpectralResidual.ResizeBytesLinear([201], 1, 1, 64, 64), v => Assert.Equal(201, v));
    }

    /// <summary>
    /// A constant image g: the 64×64 spectrum is 4096·g at (0, 0) and exactly 0 elsewhere, so the log amplitude is a spike L₀ =
    /// ln(1 + 4096g); its 3×3 mean (reflect-101) is L₀/9 at (0,0), (0,1), (1,0), (1,1), so the new amplitude is
    /// a = e^(8L₀/9) at (0,0), b = e^(−L₀/9) at the other three and 1 elsewhere, all with phase 0. The unscaled inverse DFT is
    /// 4096·δ + (a − 1) + (b − 1)(e^(iθx) + e^(iθy) + e^(i(θx+θy))), θ = 2π·n/64; then |·|, 5×5 Gaussian (σ = 8), squared,
    /// divided by the maximum.
    /// </summary>
    [Fact]
    public void A_constant_image_gives_the_closed_form_map_peaked_at_the_origin()
    {
        const int n = 64;
        const byte g = 131;
        var map = SpectralResidual.SmallMap(Enumerable.Repeat(g, n * n).ToArray());

        double l0 = Math.Log(1 + 4096.0 * g), a = Math.Exp(8 * l0 / 9), b = Math.Exp(-l0 / 9);
        var magnitude = new double[n, n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                Complex ex = Complex.FromPolarCoordinates(1, 2 * Math.PI * x / n), ey = Complex.FromPolarCoordinates(1, 2 * Math.PI * y / n);
                var f = (x == 0 && y == 0 ? 4096 : 0) + (a - 1) + (b - 1) * (ex + ey + ex * ey);
                magnitude[y, x] = f.Magnitude;
            }
        double[] weights = [.. Enumerable.Range(-2, 5).Select(d => Math.Exp(-d * d / 128.0))];
        double weightSum = weights.Sum();
        static int Mirror(int i) => i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
        var expected = new double[n, n];
        double max = 0;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                double v = 0;
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++)
                        v += weights[dy + 2] * weights[dx + 2] * magnitude[Mirror(y + dy), Mirror(x + dx)];
                v /= weightSum * weightSum;
                expected[y, x] = v * v;
                max = Math.Max(max, v * v);
            }
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                Assert.True(Math.Abs(expected[y, x] / max - map[y * n + x]) < 1e-5, $"({y},{x}): {map[y * n + x]} vs {expected[y, x] / max}");
        Assert.Equal(1f, map[0]);
        Assert.Equal(0, Array.IndexOf(map, map.Max()));
    }

    [Fact]
    public void A_single_pixel_takes_the_mean_of_the_four_centre_values_and_estimates_a_flat_zero_map()
    {
        byte[] rgb = [200, 30, 90];
        var grey = SpectralResidual.Grey(rgb)[0];
        var small = SpectralResidual.SmallMap(Enumerable.Repeat(grey, 64 * 64).ToArray());
        // 64 → 1: source position (0 + ½)·64 − ½ = 31.5 in both directions
        float centre = (float)((small[31 * 64 + 31] + (double)small[31 * 64 + 32] + small[32 * 64 + 31] + small[32 * 64 + 32]) / 4);
        Assert.Equal(centre, SpectralResidual.Compute(rgb, 1, 1)[0], 6);
        Assert.Equal([0f], SaliencyMaps.Estimate(rgb, 1, 1));
    }

    [Fact]
    public void Written_maps_are_greyscale_pngs_and_colour_maps_read_as_their_grey_value()
    {
        using var dir = TestPaths.NewTempDir();
        var path = SaliencyMaps.PathOf(dir.Path, "a");
        SaliencyMaps.Write(path, [0f, 0.5f, 1f, 0.25f], 2, 2);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0, bytes[25]);     // IHDR colour type 0: greyscale
        Assert.Equal(8, bytes[24]);     // 8 bits per sample
        Assert.Equal(new[] { 0, 128, 255, 64 }, SaliencyMaps.Read(dir.Path, "a", 2, 2).Select(v => (int)Math.Round(v * 255)));

        WeakSeg.Data.ImageCodec.Save(SaliencyMaps.PathOf(dir.Path, "rgb"), new WeakSeg.Data.RgbImage(2, 1, [9, 9, 9, 255, 0, 0]));
        Assert.Equal(new[] { 9, 76 }, SaliencyMaps.Read(dir.Path, "rgb", 1, 2).Select(v => (int)Math.Round(v * 255)));

        File.WriteAllBytes(SaliencyMaps.PathOf(dir.Path, "broken"), [1, 2, 3]);
        var broken = Assert.Throws<WeakSegException>(() => SaliencyMaps.Read(dir.Path, "broken", 2, 2));
        Assert.StartsWith(SaliencyMaps.PathOf(dir.Path, "broken") + ": saliency map is not a readable image", broken.Message);
    }
}
