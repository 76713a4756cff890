using WeakSeg.Refinement;
using Xunit.Abstractions;

namespace WeakSeg.Tests.Refinement;

public class PermutohedralLatticeTests(ITestOutputHelper output)
{
    static float[] Grid(int width, int height, float spacing)
    {
        var f = new float[width * height * 2];
        for (int y = 0, i = 0; y < height; y++)
            for (int x = 0; x < width; x++, i++)
            {
                f[i * 2] = x * spacing;
                f[i * 2 + 1] = y * spacing;
            }
        return f;
    }

    static (double MaxRelative, double MeanRelative) NormalisedError(PermutohedralLattice lattice, float[] features, int d, float[] values)
    {
        int n = lattice.PointCount;
        var filtered = new float[n];
        var density = new float[n];
        var ones = new float[n];
        Array.Fill(ones, 1f);
        lattice.Filter(values, filtered, 1);
        lattice.Filter(ones, density, 1);
        var exact = BruteForceDenseCrf.ExactFilter(features, d, values.Select(v => (double)v).ToArray(), 1);
        var exactDensity = BruteForceDenseCrf.ExactFilter(features, d, ones.Select(v => (double)v).ToArray(), 1);
        double max = 0, sum = 0;
        for (int i = 0; i < n; i++)
        {
            double want = exact[i] / exactDensity[i], got = filtered[i] / density[i];
            double rel = Math.Abs(got - want) / want;
            max = Math.Max(max, rel);
            sum += rel;
        }
        return (max, sum / n);
    }

    // The lattice approximates the Gaussian *shape* well but not its total mass (the splat/blur/slice kernel integrates
    // to ~0.78-0.92 of √(2π)^… at d ≤ 2 and less at d = 5). The CRF only uses it normalised (n = 1/√(K1)), where the
    // mass cancels, so the tests compare the normalised filter K v / K 1 against the exact one.

    [Fact]
    public void Normalised_filter_matches_exact_gaussian_in_2d_within_3_percent()
    {
        // 12×10 pixel grid with sxy = 3 (the PSA smoothness kernel), smooth plus random values.
        var features = Grid(12, 10, 1f / 3f);
        var random = new SplitMix(7);
        var values = new float[120];
        for (int i = 0; i < values.Length; i++) values[i] = 0.2f + (i % 12) / 12f + (float)random.NextDouble() * 0.5f;
        var lattice = PermutohedralLattice.Build(features, 120, 2, maxThreads: 1);
        var (max, mean) = NormalisedError(lattice, features, 2, values);
        output.WriteLine($"2d: vertices {lattice.VertexCount}, max rel {max:F4}, mean rel {mean:F4}");
        Assert.True(max < 0.03, $"max relative error {max}");
        Assert.True(mean < 0.01, $"mean relative error {mean}");
    }

    [Fact]
    public void Normalised_filter_matches_exact_gaussian_in_5d_bilateral_features_within_8_percent()
    {
        var (rgb, _, _) = CrfTestInputs.Blocky(12, 10, 4, 11);
        var features = DenseCrf.BilateralFeatures(rgb, 12, 10, 8f, 13f);
        var random = new SplitMix(5);
        var values = new float[120];
        for (int i = 0; i < values.Length; i++) values[i] = 0.1f + (float)random.NextDouble();
        var lattice = PermutohedralLattice.Build(features, 120, 5, maxThreads: 1);
        var (max, mean) = NormalisedError(lattice, features, 5, values);
        output.WriteLine($"5d: vertices {lattice.VertexCount}, max rel {max:F4}, mean rel {mean:F4}");
        Assert.True(max < 0.08, $"max relative error {max}");
        Assert.True(mean < 0.03, $"mean relative error {mean}");
    }

    [Fact]
    public void Impulse_response_is_a_unit_variance_gaussian_along_a_line_in_2d()
    {
        // Points on a line through the plane, a unit impulse in the middle: the response's second moment along the
        // line must be ≈ 1 (σ = 1 in feature units), as exp(−s²/2) has.
        int n = 241;
        var features = new float[n * 2];
        for (int i = 0; i < n; i++)
        {
            float s = -6f + i * 0.05f;
            features[i * 2] = 2.3f + s * 0.8f;
            features[i * 2 + 1] = 1.7f + s * 0.6f;
        }
        var impulse = new float[n];
        impulse[120] = 1f;
        var response = new float[n];
        PermutohedralLattice.Build(features, n, 2, maxThreads: 1).Filter(impulse, response, 1);
        double mass = 0, second = 0;
        for (int i = 0; i < n; i++)
        {
            double s = -6 + i * 0.05;
            mass += response[i];
            second += response[i] * s * s;
        }
        output.WriteLine($"variance {second / mass:F4}");
        Assert.InRange(second / mass, 0.85, 1.15);
        Assert.True(response.All(r => r >= 0));
        Assert.Equal(120, Array.IndexOf(response, response.Max()));
    }

    [Fact]
    public void Filter_is_symmetric_and_linear_over_channels()
    {
        // Splat is the transpose of slice and each axis pass of the blur is symmetric, so ⟨u, K v⟩ ≈ ⟨K u, v⟩; not
        // exactly, because the d+1 axis passes do not commute where the lattice is cut off (missing vertices count as 0),
        // which costs ~0.6 % here; a wrong neighbour or weight breaks it by far more. And filtering 3 channels at once
        // equals filtering each alone.
        var (rgb, _, _) = CrfTestInputs.Blocky(9, 7, 3, 3);
        var features = DenseCrf.BilateralFeatures(rgb, 9, 7, 4f, 20f);
        int n = 63;
        var lattice = PermutohedralLattice.Build(features, n, 5);
        var random = new SplitMix(9);
        var u = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray();
        var v = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray();
        var ku = new float[n];
        var kv = new float[n];
        lattice.Filter(u, ku, 1);
        lattice.Filter(v, kv, 1);
        double left = 0, right = 0;
        for (int i = 0; i < n; i++)
        {
            left += u[i] * kv[i];
            right += ku[i] * v[i];
        }
        output.WriteLine($"<u,Kv> {left:F4} <Ku,v> {right:F4}");
        Assert.Equal(left, right, 0.02 * Math.Abs(left));

        var stacked = new float[n * 3];
        for (int i = 0; i < n; i++)
        {
            stacked[i * 3] = u[i];
            stacked[i * 3 + 1] = v[i];
            stacked[i * 3 + 2] = 2 * u[i] - v[i];
        }
        var both = new float[n * 3];
        lattice.Filter(stacked, both, 3);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(ku[i], both[i * 3], 1e-5f);
            Assert.Equal(kv[i], both[i * 3 + 1], 1e-5f);
            Assert.Equal(2 * ku[i] - kv[i], both[i * 3 + 2], 1e-4f);
        }
    }

    [Fact]
    public void Threaded_and_single_threaded_lattices_agree()
    {
        var (rgb, _, _) = CrfTestInputs.Blocky(64, 48, 5, 21);
        var features = DenseCrf.BilateralFeatures(rgb, 64, 48, 10f, 13f);
        int n = 64 * 48;
        var values = Enumerable.Range(0, n * 2).Select(i => (float)((i * 37) % 101) / 101f).ToArray();
        var single = new float[n * 2];
        var multi = new float[n * 2];
        var one = PermutohedralLattice.Build(features, n, 5, maxThreads: 1);
        var two = PermutohedralLattice.Build(features, n, 5, maxThreads: 2);
        one.Filter(values, single, 2);
        two.Filter(values, multi, 2);
        Assert.Equal(one.VertexCount, two.VertexCount);
        Assert.Equal(one.PointVertex, two.PointVertex);  // vertex numbering does not depend on threads
        for (int e = 0; e < single.Length; e++) Assert.Equal(single[e], multi[e], 1e-5f * Math.Max(1f, Math.Abs(single[e])));
    }

    [Fact]
    public void Bad_lattice_input_is_rejected_with_a_clear_message()
    {
        var nan = new[] { 0f, 1f, float.NaN, 2f };
        var e = Assert.Throws<WeakSegException>(() => PermutohedralLattice.Build(nan, 2, 2));
        Assert.Contains("feature 0 of point 1 is NaN", e.Message);
        e = Assert.Throws<WeakSegException>(() => PermutohedralLattice.Build(new float[5], 2, 2));
        Assert.Contains("5 feature values for 2 points × 2 dimensions", e.Message);
    }
}
