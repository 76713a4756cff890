using WeakSeg.Refinement;
using Xunit.Abstractions;

namespace WeakSeg.Tests.Refinement;

public class DenseCrfTests(ITestOutputHelper output)
{
    static readonly DenseCrfConfig NoPairwise = new() { GaussianWeight = 0, BilateralWeight = 0 };

    public static TheoryData<string, int, uint> AgreementCases => new()
    {
        // name, labels, seed. Kernels scaled to the 12×10 image so both matter (the PSA sxy 80 would make the bilateral purely colour).
        { "psa-like", 3, 1 },
        { "psa-like", 4, 2 },
        { "strong", 4, 3 },
    };

    [Theory]
    [MemberData(nameof(AgreementCases))]
    public void Lattice_mean_field_agrees_with_brute_force_mean_field(string name, int labels, uint seed)
    {
        const int width = 12, height = 10;
        var (rgb, probabilities, _) = CrfTestInputs.Blocky(width, height, labels, seed);
        var config = name == "strong"
            ? new DenseCrfConfig { GaussianSxy = 2, GaussianWeight = 3, BilateralSxy = 6, BilateralSrgb = 20, BilateralWeight = 5, Iterations = 10 }
            : new DenseCrfConfig { GaussianSxy = 3, GaussianWeight = 3, BilateralSxy = 8, BilateralSrgb = 13, BilateralWeight = 4, Iterations = 10 };
        var result = DenseCrf.Refine(rgb, width, height, probabilities, config);
        var unary = probabilities.Select(p => -MathF.Log(Math.Clamp(p, 1e-5f, 1f))).ToArray();
        var exact = BruteForceDenseCrf.MeanField(rgb, width, height, unary, labels, config);

        int n = width * height, agree = 0, changedByCrf = 0;
        double maxDiff = 0, sumDiff = 0;
        for (int i = 0; i < n; i++)
        {
            int exactLabel = 0, unaryLabel = 0;
            for (int c = 1; c < labels; c++)
            {
                if (exact[c * n + i] > exact[exactLabel * n + i]) exactLabel = c;
                if (probabilities[c * n + i] > probabilities[unaryLabel * n + i]) unaryLabel = c;
            }
            if (exactLabel == result.Labels[i]) agree++;
            if (exactLabel != unaryLabel) changedByCrf++;
            for (int c = 0; c < labels; c++)
            {
                double diff = Math.Abs(exact[c * n + i] - result.Probabilities[c * n + i]);
                maxDiff = Math.Max(maxDiff, diff);
                sumDiff += diff;
            }
        }
        output.WriteLine($"{name} K={labels}: agree {agree}/{n}, CRF changed {changedByCrf} labels, max |ΔQ| {maxDiff:F4}, mean |ΔQ| {sumDiff / (n * labels):F5}");
        // The case must be one where the CRF does something, or agreement would be trivial.
        Assert.True(changedByCrf >= 5, $"CRF changed only {changedByCrf} labels");
        Assert.True(agree >= 0.99 * n, $"labels agree on {agree}/{n}");
        // Tolerance: the normalised lattice filter is within ~3 % (2-D) / ~8 % (5-D) of the exact one (lattice tests).
        // A relative message error δ shifts a logit by ≤ δ·Σw (≈ 0.2 here) and a marginal by ≤ that/4 ≈ 0.05 per step;
        // at most pixels the fixed point damps it (observed mean |ΔQ| 0.0003-0.003), but a pixel whose two best labels
        // nearly tie can move further (observed max 0.12, at the one pixel whose label differs). Hence: every
        // marginal within 0.15, mean within 0.005, labels ≥ 99 %.
        Assert.True(maxDiff < 0.15, $"max |ΔQ| {maxDiff}");
        Assert.True(sumDiff / (n * labels) < 0.005, $"mean |ΔQ| {sumDiff / (n * labels)}");
    }

    [Fact]
    public void Zero_pairwise_weights_give_the_unary_argmax_and_normalised_clipped_probabilities()
    {
        var (rgb, probabilities, _) = CrfTestInputs.Blocky(12, 10, 4, 5);
        // A few exact zeros, which the clip turns into 1e-5 before renormalising.
        probabilities[120 + 3] += probabilities[3];
        probabilities[3] = 0f;
        var result = DenseCrf.Refine(rgb, 12, 10, probabilities, NoPairwise);
        int n = 120;
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            double z = 0;
            for (int c = 0; c < 4; c++)
            {
                if (probabilities[c * n + i] > probabilities[best * n + i]) best = c;
                z += Math.Max(probabilities[c * n + i], 1e-5);
            }
            Assert.Equal(best, result.Labels[i]);
            for (int c = 0; c < 4; c++)
                Assert.Equal(Math.Max(probabilities[c * n + i], 1e-5) / z, result.Probabilities[c * n + i], 1e-6);
        }
        Assert.Equal(0, result.Timings.Iterations);
    }

    [Fact]
    public void Refined_probabilities_sum_to_one_per_pixel()
    {
        var (rgb, probabilities, _) = CrfTestInputs.Blocky(40, 30, 5, 8);
        var result = DenseCrf.Refine(rgb, 40, 30, probabilities, DenseCrfConfig.Psa);
        int n = 1200;
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int c = 0; c < 5; c++)
            {
                float q = result.Probabilities[c * n + i];
                Assert.InRange(q, 0f, 1f);
                sum += q;
            }
            Assert.Equal(1.0, sum, 1e-5);
        }
    }

    [Fact]
    public void Isolated_noisy_pixel_is_flipped_to_its_neighbours_label()
    {
        // 9×9 uniform grey image, every pixel 0.8 label 0 / 0.2 label 1 except the centre, which says 0.35 / 0.65.
        // Its neighbours (same colour) vote label 0 through both kernels, so the CRF must flip it; the rest stays 0.
        const int size = 9;
        int n = size * size, centre = 4 * size + 4;
        var rgb = Enumerable.Repeat((byte)128, n * 3).ToArray();
        var probabilities = new float[2 * n];
        for (int i = 0; i < n; i++)
        {
            probabilities[i] = i == centre ? 0.35f : 0.8f;
            probabilities[n + i] = 1 - probabilities[i];
        }
        var unaryOnly = DenseCrf.Refine(rgb, size, size, probabilities, NoPairwise);
        Assert.Equal(1, unaryOnly.Labels[centre]);

        var result = DenseCrf.Refine(rgb, size, size, probabilities, DenseCrfConfig.Psa);
        Assert.All(result.Labels, l => Assert.Equal(0, l));
        Assert.True(result.Probabilities[centre] > 0.9f, $"Q(label 0) at the centre is {result.Probabilities[centre]}");
    }

    [Fact]
    public void Colour_edge_keeps_a_region_the_smoothness_kernel_alone_would_erase()
    {
        // A 3×3 red square on grey, with probabilities that say label 1 weakly inside it (0.55): the bilateral kernel
        // (same colour inside) keeps it, while a strong smoothness-only CRF lets the grey majority take it over.
        const int size = 15;
        int n = size * size;
        var rgb = new byte[n * 3];
        var probabilities = new float[2 * n];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int i = y * size + x;
                bool inside = x is >= 6 and <= 8 && y is >= 6 and <= 8;
                rgb[i * 3] = inside ? (byte)220 : (byte)120;
                rgb[i * 3 + 1] = inside ? (byte)30 : (byte)120;
                rgb[i * 3 + 2] = inside ? (byte)30 : (byte)120;
                probabilities[n + i] = inside ? 0.55f : 0.2f;
                probabilities[i] = 1 - probabilities[n + i];
            }
        var bilateral = DenseCrf.Refine(rgb, size, size, probabilities,
            new DenseCrfConfig { GaussianWeight = 0, BilateralSxy = 20, BilateralSrgb = 13, BilateralWeight = 10 });
        var smoothOnly = DenseCrf.Refine(rgb, size, size, probabilities,
            new DenseCrfConfig { GaussianSxy = 3, GaussianWeight = 10, BilateralWeight = 0 });
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool inside = x is >= 6 and <= 8 && y is >= 6 and <= 8;
                Assert.Equal(inside ? 1 : 0, bilateral.Labels[y * size + x]);
            }
        Assert.Equal(0, smoothOnly.Labels[7 * size + 7]);
    }

    [Fact]
    public void Label_unary_matches_unary_from_labels_with_gt_prob()
    {
        // Without pairwise terms Q is exactly the label unary's distribution: 0.7 on the given label, 0.1 on each of 3 others,
        // and the unsure label (255) uniform 0.25.
        var rgb = new byte[4 * 3];
        var labels = new byte[] { 0, 3, 255, 2 };
        var result = DenseCrf.RefineLabels(rgb, 2, 2, labels, 4, NoPairwise, unsureLabel: 255);
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 4; c++)
            {
                float want = labels[i] == 255 ? 0.25f : c == labels[i] ? 0.7f : 0.1f;
                Assert.Equal(want, result.Probabilities[c * 4 + i], 1e-6f);
            }
        Assert.Equal(new byte[] { 0, 3, 0, 2 }, result.Labels);
    }

    [Fact]
    public void Label_refinement_with_psa_kernels_cleans_salt_noise_in_a_two_region_image()
    {
        var (rgb, _, truth) = CrfTestInputs.Blocky(32, 24, 3, 4);
        var noisy = (byte[])truth.Clone();
        var random = new SplitMix(12);
        int flipped = 0;
        for (int i = 0; i < noisy.Length; i++)
            if (random.NextDouble() < 0.1)
            {
                noisy[i] = (byte)((noisy[i] + 1) % 3);
                flipped++;
            }
        var result = DenseCrf.RefineLabels(rgb, 32, 24, noisy, 3, DenseCrfConfig.Psa);
        int wrong = result.Labels.Zip(truth).Count(p => p.First != p.Second);
        output.WriteLine($"flipped {flipped}, wrong after CRF {wrong}");
        Assert.True(flipped > 50);
        Assert.True(wrong <= flipped / 5, $"{wrong} wrong of {flipped} flipped");
    }

    [Fact]
    public void Scores_are_used_unnormalised_like_unary_from_softmax()
    {
        // [0.2, 0.05, 2.0] → clipped to [0.2, 0.05, 1] → Q = that / 1.25 without pairwise terms.
        var rgb = new byte[3];
        var result = DenseCrf.RefineScores(rgb, 1, 1, new[] { 0.2f, 0.05f, 2.0f }, NoPairwise);
        Assert.Equal(new[] { 0.16f, 0.04f, 0.8f }, result.Probabilities.Select(q => MathF.Round(q, 6)).ToArray());
        Assert.Equal(2, result.Labels[0]);
    }

    [Fact]
    public void Presets_carry_the_seed_repositories_values()
    {
        Assert.Equal((10, 3f, 3f, 80f, 13f, 10f), Tuple(DenseCrfConfig.Psa));
        Assert.Equal((10, 4f, 3f, 83f, 5f, 3f), Tuple(DenseCrfConfig.MctFormerSeg));
        Assert.Equal((10, 1f, 1f, 121f, 5f, 4f), Tuple(DenseCrfConfig.ToCo));
        Assert.Equal((10, 1f, 3f, 67f, 3f, 4f), Tuple(DenseCrfConfig.DeepLabCoco));
        Assert.Equal(DenseCrfConfig.ToCo, DenseCrfConfig.FromPreset("ToCo"));
        Assert.Contains("unknown dense CRF preset 'x'", Assert.Throws<WeakSegException>(() => DenseCrfConfig.FromPreset("x")).Message);

        static (int, float, float, float, float, float) Tuple(DenseCrfConfig c) =>
            (c.Iterations, c.GaussianSxy, c.GaussianWeight, c.BilateralSxy, c.BilateralSrgb, c.BilateralWeight);
    }

    [Fact]
    public void Runs_are_bit_identical_and_thread_count_changes_only_rounding()
    {
        var (rgb, probabilities, _) = CrfTestInputs.Blocky(50, 40, 6, 30);
        var one = DenseCrf.Refine(rgb, 50, 40, probabilities, new DenseCrfConfig { MaxThreads = 1 });
        var two = DenseCrf.Refine(rgb, 50, 40, probabilities, new DenseCrfConfig { MaxThreads = 2 });
        var twoAgain = DenseCrf.Refine(rgb, 50, 40, probabilities, new DenseCrfConfig { MaxThreads = 2 });
        Assert.Equal(two.Probabilities, twoAgain.Probabilities);
        Assert.Equal(one.Labels, two.Labels);
        for (int e = 0; e < one.Probabilities.Length; e++)
            Assert.Equal(one.Probabilities[e], two.Probabilities[e], 1e-5f);
    }
}
