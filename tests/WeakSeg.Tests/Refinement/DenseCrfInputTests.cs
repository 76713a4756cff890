using WeakSeg.Refinement;

namespace WeakSeg.Tests.Refinement;

public class DenseCrfInputTests
{
    // 3×2 image, 2 labels; pixel i is (x i % 3, y i / 3).
    static readonly byte[] Rgb = Enumerable.Range(0, 18).Select(i => (byte)(i * 13)).ToArray();

    static float[] Uniform(int labels, int pixels) => Enumerable.Repeat(1f / labels, labels * pixels).ToArray();

    static string Error(Action action) => Assert.Throws<WeakSegException>(action).Message;

    [Fact]
    public void Image_buffer_of_the_wrong_size_is_rejected()
    {
        var message = Error(() => DenseCrf.Refine(Rgb.AsSpan(0, 17), 3, 2, Uniform(2, 6)));
        Assert.Equal("dense CRF: image buffer has 17 bytes but 3×2 RGB needs 18 (H×W×3, row-major)", message);
    }

    [Fact]
    public void Probabilities_that_do_not_match_the_image_size_are_rejected()
    {
        var message = Error(() => DenseCrf.Refine(Rgb, 3, 2, Uniform(2, 5)));
        Assert.Equal("dense CRF: probabilities have 10 values, not a multiple of the image's 3×2 = 6 pixels (expected [K, H, W])", message);
        message = Error(() => DenseCrf.RefineLabels(Rgb, 3, 2, new byte[5], 2));
        Assert.Equal("dense CRF: label map has 5 pixels but the image is 3×2 = 6", message);
    }

    [Fact]
    public void A_single_label_is_rejected()
    {
        var message = Error(() => DenseCrf.Refine(Rgb, 3, 2, Enumerable.Repeat(1f, 6).ToArray()));
        Assert.Equal("dense CRF: needs at least 2 labels, got K = 1 (with one label there is nothing to refine)", message);
        Assert.Contains("needs at least 2 labels, got K = 1", Error(() => DenseCrf.RefineLabels(Rgb, 3, 2, new byte[6], 1)));
    }

    [Fact]
    public void An_empty_image_is_rejected()
    {
        Assert.Equal("dense CRF: empty image (width 0, height 2)", Error(() => DenseCrf.Refine([], 0, 2, [])));
        Assert.Equal("dense CRF: empty image (width 3, height 0)", Error(() => DenseCrf.RefineScores([], 3, 0, [])));
    }

    [Fact]
    public void Negative_and_nan_probabilities_are_rejected_with_their_position()
    {
        var p = Uniform(2, 6);
        p[6 + 4] = -0.25f; // label 1, pixel 4 = (x 1, y 1)
        Assert.Equal("dense CRF: probability of label 1 at pixel (x 1, y 1) is negative (-0.25); expected values in [0, 1]",
                     Error(() => DenseCrf.Refine(Rgb, 3, 2, p)));
        p = Uniform(2, 6);
        p[2] = float.NaN;
        Assert.Equal("dense CRF: probability of label 0 at pixel (x 2, y 0) is NaN; expected values in [0, 1]",
                     Error(() => DenseCrf.Refine(Rgb, 3, 2, p)));
        Assert.Contains("score of label 0 at pixel (x 2, y 0) is NaN", Error(() => DenseCrf.RefineScores(Rgb, 3, 2, p)));
    }

    [Fact]
    public void Sums_within_the_tolerance_are_renormalised_and_beyond_it_rejected()
    {
        // Pixel 0 sums to 1.0008 (inside the 1e-3 tolerance): refined as if divided by its sum.
        var p = Uniform(2, 6);
        p[0] = 0.5008f;
        var noPairwise = new DenseCrfConfig { GaussianWeight = 0, BilateralWeight = 0 };
        var result = DenseCrf.Refine(Rgb, 3, 2, p, noPairwise);
        Assert.Equal(0.5008f / 1.0008f, result.Probabilities[0], 1e-6f);

        // Pixel 5 sums to 1.2: rejected, naming the pixel, the sum and the way out.
        p = Uniform(2, 6);
        p[5] = 0.7f;
        Assert.Equal("dense CRF: probabilities at pixel (x 2, y 1) sum to 1.2, not 1 (tolerance 0.001); " +
                     "pass softmax outputs, or use DenseCrf.RefineScores for unnormalised scores",
                     Error(() => DenseCrf.Refine(Rgb, 3, 2, p)));
        // A stricter tolerance rejects what the default accepts.
        p = Uniform(2, 6);
        p[0] = 0.5008f;
        Assert.Contains("sum to 1.0008, not 1 (tolerance 0.0001)",
                        Error(() => DenseCrf.Refine(Rgb, 3, 2, p, new DenseCrfConfig { ProbabilitySumTolerance = 1e-4f })));
    }

    [Fact]
    public void Labels_outside_the_label_set_are_rejected_unless_marked_unsure()
    {
        var labels = new byte[] { 0, 1, 1, 0, 255, 1 };
        Assert.Equal("dense CRF: label 255 at pixel (x 1, y 1) is outside 0..1",
                     Error(() => DenseCrf.RefineLabels(Rgb, 3, 2, labels, 2)));
        labels[4] = 7;
        Assert.Equal("dense CRF: label 7 at pixel (x 1, y 1) is outside 0..1 and is not the unsure label 255",
                     Error(() => DenseCrf.RefineLabels(Rgb, 3, 2, labels, 2, unsureLabel: 255)));
    }

    [Fact]
    public void Invalid_config_values_are_rejected_naming_the_field()
    {
        var message = Error(() => DenseCrf.Refine(Rgb, 3, 2, Uniform(2, 6), new DenseCrfConfig { BilateralSrgb = 0, Iterations = -1 }));
        Assert.Equal("dense CRF config: Iterations must be ≥ 0, got -1; BilateralSrgb must be a finite number > 0, got 0", message);
        Assert.Contains("GroundTruthProbability must be in (0, 1), got 1",
                        Error(() => DenseCrf.RefineLabels(Rgb, 3, 2, new byte[6], 2, new DenseCrfConfig { GroundTruthProbability = 1 })));
    }
}
