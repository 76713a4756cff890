using TorchSharp;
using WeakSeg.Segmentation;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class GradientClippingLossTests
{
    // 4×4 signal, S = 2, pixel (3,3) ignored. Patch means (labelled pixels only):
    //   top-left {0.1, 0.5, 0.3, 0.9} → 0.45      top-right {2, 2, 2, 1} → 1.75
    //   bottom-left {0.2 ×4} → 0.2                 bottom-right {0.4, 3.0, 0.4} → 3.8/3
    // λ_global = (0.45 + 1.75 + 0.2 + 1.26667)/4 = 0.916667.
    static readonly float[] Signal =
    [
        0.1f, 0.5f, 2.0f, 2.0f,
        0.3f, 0.9f, 2.0f, 1.0f,
        0.2f, 0.2f, 0.4f, 3.0f,
        0.2f, 0.2f, 0.4f, 9.0f,
    ];

    static Tensor Valid() => torch.tensor(Enumerable.Range(0, 16).Select(i => i != 15).ToArray(), new long[] { 1, 4, 4 });

    [Fact]
    public void Mask_keeps_pixels_at_or_below_max_of_patch_and_global_mean_when_global_mean_is_below_tau()
    {
        using var scope = torch.NewDisposeScope();
        var g = torch.tensor(Signal, new long[] { 1, 4, 4 });
        var d = GradientClippingLoss.Decide(g, Valid(), patchSize: 2, startValue: 1.2);
        Assert.True(d.Clipping);
        Assert.Equal(3.666667 / 4, d.GlobalMean, 5);
        var means = d.PatchMeans.data<float>().ToArray();
        Assert.Equal(new[] { 0.45, 1.75, 0.2, Math.Round(3.8 / 3, 5) }, means.Select(m => Math.Round(m, 5)).ToArray());
        // top-left: threshold max(0.45, 0.9167) keeps 0.9; top-right: 1.75 drops the 2.0s; bottom-right: 1.2667 drops 3.0; ignored never kept.
        bool[] expected =
        [
            true, true, false, false,
            true, true, false, true,
            true, true, true, false,
            true, true, true, false,
        ];
        Assert.Equal(expected, d.Keep.data<bool>().ToArray());
    }

    [Fact]
    public void Mask_is_all_labelled_pixels_when_global_mean_exceeds_tau()
    {
        using var scope = torch.NewDisposeScope();
        var g = torch.tensor(Signal, new long[] { 1, 4, 4 });
        var below = GradientClippingLoss.Decide(g, Valid(), 2, startValue: 0.91);   // λ_global 0.9167 > 0.91: no clipping
        Assert.False(below.Clipping);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => i != 15).ToArray(), below.Keep.data<bool>().ToArray());
        var above = GradientClippingLoss.Decide(g, Valid(), 2, startValue: 0.92);   // 0.9167 ≤ 0.92: clipping
        Assert.True(above.Clipping);
        Assert.Equal(11, above.Keep.data<bool>().ToArray().Count(k => k));
    }

    [Fact]
    public void Edge_patches_are_smaller_when_S_does_not_divide_the_size_and_the_batch_pools_patches()
    {
        using var scope = torch.NewDisposeScope();
        // Two 1×3 images, S = 2: patches {a0,a1},{a2},{b0,b1},{b2}.
        var g = torch.tensor(new float[] { 1, 3, 10, 0, 0, 2 }, new long[] { 2, 1, 3 });
        var valid = torch.ones(2, 1, 3, dtype: ScalarType.Bool);
        var d = GradientClippingLoss.Decide(g, valid, 2, startValue: 100);
        Assert.Equal(new float[] { 2, 10, 0, 2 }, d.PatchMeans.data<float>().ToArray());
        Assert.Equal(3.5, d.GlobalMean, 5);           // (2 + 10 + 0 + 2)/4
        // thresholds: 3.5 (keeps 1 and 3), 10 (keeps 10), 3.5 (keeps 0, 0), 3.5 (keeps 2)
        Assert.All(d.Keep.data<bool>().ToArray(), Assert.True);
        var tight = GradientClippingLoss.Decide(torch.tensor(new float[] { 1, 5, 10, 0, 0, 2 }, new long[] { 2, 1, 3 }), valid, 2, 100);
        // means 3, 10, 0, 2 → global 3.75; first patch threshold 3.75 drops the 5
        Assert.Equal(new[] { true, false, true, true, true, true }, tight.Keep.data<bool>().ToArray());
    }

    // 1×4 image, two classes, S = 2. Per-pixel CE: ln(1+e^-2), ln 2, ln(1+e^-3), ln(1+e^3).
    static (Tensor Logits, Tensor Target, double[] Ce) HandCase()
    {
        var logits = torch.tensor(new float[] { 2, 0, 0, 0, /* class 1: */ 0, 0, 3, 3 }, new long[] { 1, 2, 1, 4 }).requires_grad_(true);
        var target = torch.tensor(new long[] { 0, 1, 1, 0 }, new long[] { 1, 1, 4 });
        double[] ce = [Math.Log(1 + Math.Exp(-2)), Math.Log(2), Math.Log(1 + Math.Exp(-3)), Math.Log(1 + Math.Exp(3))];
        return (logits, target, ce);
    }

    [Fact]
    public void Loss_is_the_mean_CE_over_kept_pixels_and_clipped_pixels_get_no_gradient()
    {
        using var scope = torch.NewDisposeScope();
        var (logits, target, ce) = HandCase();
        // patch means 0.410 and 1.549 → λ_global 0.979 ≤ 1.2: thresholds 0.979 and 1.549 drop only pixel 3 (CE 3.049).
        var terms = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.GradientClipping, ClipSignal.CrossEntropy, 2, 1.2);
        Assert.Equal((ce[0] + ce[1] + ce[2]) / 3, terms.Total.item<float>(), 5);
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value.item<float>());
        Assert.Equal(ce.Average(), parts["ce"], 5);
        Assert.Equal(ce.Average(), parts["lambda_global"], 5);
        Assert.Equal(0.75, parts["kept"], 5);
        Assert.Equal(1, parts["clipping"]);
        terms.Total.backward();
        var grad = logits.grad!.data<float>().ToArray();        // [class0: p0..p3, class1: p0..p3]
        Assert.Equal(0f, grad[3]);
        Assert.Equal(0f, grad[7]);
        // pixel 0: ∂/∂z0 of CE/3 = (softmax0 − 1)/3
        double p0 = 1 / (1 + Math.Exp(-2));
        Assert.Equal((p0 - 1) / 3, grad[0], 5);
    }

    [Fact]
    public void Naive_loss_and_ungated_clipping_loss_are_the_plain_mean_CE()
    {
        using var scope = torch.NewDisposeScope();
        var (logits, target, ce) = HandCase();
        var naive = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.Naive, ClipSignal.CrossEntropy, 2, 1.2);
        Assert.Equal(ce.Average(), naive.Total.item<float>(), 5);
        var ungated = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.GradientClipping, ClipSignal.CrossEntropy, 2, 0.5);
        Assert.Equal(ce.Average(), ungated.Total.item<float>(), 5);
        // an ignored pixel leaves the mean: label pixel 3 as 255
        var partial = GradientClippingLoss.Compute(logits, torch.tensor(new long[] { 0, 1, 1, 255 }, new long[] { 1, 1, 4 }),
            SegmentationDecoderLoss.Naive, ClipSignal.CrossEntropy, 2, 1.2);
        Assert.Equal((ce[0] + ce[1] + ce[2]) / 3, partial.Total.item<float>(), 5);
    }

    [Fact]
    public void Logit_gradient_norm_is_the_norm_of_softmax_minus_onehot()
    {
        using var scope = torch.NewDisposeScope();
        var (logits, target, _) = HandCase();
        var g = GradientClippingLoss.LogitGradientNorm(logits, target).data<float>().ToArray();
        double p = 1 / (1 + Math.Exp(-2));                      // pixel 0: softmax (p, 1−p), target 0 → √2·(1−p)
        Assert.Equal(Math.Sqrt(2) * (1 - p), g[0], 5);
        Assert.Equal(Math.Sqrt(0.5), g[1], 5);                  // (0.5, 0.5) vs (0, 1)
        double q = 1 / (1 + Math.Exp(-3));                      // pixel 3: softmax (1−q, q), target 0 → √2·q
        Assert.Equal(Math.Sqrt(2) * q, g[3], 5);
    }
}
