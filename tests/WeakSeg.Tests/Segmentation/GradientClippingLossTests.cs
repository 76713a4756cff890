using TorchSharp;
using WeakSeg.Segmentation;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

/// <summary>The official gradient clipping on hand-computed cases (the golden parity is in <see cref="WeakTrRetrainingFixtureTests"/>).</summary>
[Collection("Torch")]
public class GradientClippingLossTests
{
    // A 4×4 CE map, S = 2, pixel (3,3) ignored (CE 0). Official means count the ignored pixel as 0:
    //   λ_global = 13.4 / 16 = 0.8375
    //   patch means: top-left {0.1, 0.5, 0.3, 0.9} → 0.45   top-right {2, 2, 2, 1} → 1.75
    //                bottom-left {0.2 ×4} → 0.2              bottom-right {0.4, 3.0, 0.4, 0} → 0.95
    //   thresholds max(λ_i, λ_global): 0.8375, 1.75, 0.8375, 0.95
    static readonly float[] Ce =
    [
        0.1f, 0.5f, 2.0f, 2.0f,
        0.3f, 0.9f, 2.0f, 1.0f,
        0.2f, 0.2f, 0.4f, 3.0f,
        0.2f, 0.2f, 0.4f, 0.0f,
    ];

    static Tensor Valid() => torch.tensor(Enumerable.Range(0, 16).Select(i => i != 15).ToArray(), new long[] { 1, 4, 4 });

    [Fact]
    public void Loss_becomes_min_of_ce_and_the_patch_threshold_when_the_batch_mean_is_below_tau()
    {
        using var scope = torch.NewDisposeScope();
        var ce = torch.tensor(Ce, new long[] { 1, 4, 4 }).requires_grad_(true);
        var result = GradientClippingLoss.Clip(ce, Valid(), patchSize: 2, startValue: 1.2);
        Assert.True(result.Clipping);
        Assert.Equal(0.8375, result.GlobalMean, 5);
        Assert.Equal(new[] { 0.45, 1.75, 0.2, 0.95 }, result.PatchMeans!.data<float>().ToArray().Select(m => Math.Round(m, 5)).ToArray());
        Assert.Equal(new[] { 0.8375, 1.75, 0.8375, 0.95 }, result.Threshold!.data<float>().ToArray().Select(m => Math.Round(m, 5)).ToArray());
        double[] expected =
        [
            0.1, 0.5, 1.75, 1.75,
            0.3, 0.8375, 1.75, 1.0,
            0.2, 0.2, 0.4, 0.95,
            0.2, 0.2, 0.4, 0.0,
        ];
        Assert.Equal(expected, result.LossMap.data<float>().ToArray().Select(v => Math.Round(v, 5)).ToArray());
        // clipped pixels keep the threshold's value but pass no gradient; the mean is over all 16 pixels
        result.LossMap.mean().backward();
        var grad = ce.grad!.data<float>().ToArray();
        for (int i = 0; i < 16; i++)
            Assert.True(Math.Abs((expected[i] < Ce[i] - 1e-6 ? 0 : 1.0 / 16) - grad[i]) < 1e-6, $"gradient of pixel {i}: {grad[i]}");
        Assert.Equal(5, result.Kept.logical_not().sum().item<long>());
    }

    [Fact]
    public void Nothing_is_clipped_when_the_batch_mean_exceeds_tau()
    {
        using var scope = torch.NewDisposeScope();
        var ce = torch.tensor(Ce, new long[] { 1, 4, 4 });
        var shut = GradientClippingLoss.Clip(ce, Valid(), 2, startValue: 0.83);       // 0.8375 > 0.83
        Assert.False(shut.Clipping);
        Assert.Null(shut.Threshold);
        Assert.Equal(Ce, shut.LossMap.data<float>().ToArray());
        var open = GradientClippingLoss.Clip(ce, Valid(), 2, startValue: 0.84);       // 0.8375 ≤ 0.84
        Assert.True(open.Clipping);
        var never = GradientClippingLoss.Clip(ce, Valid(), 2, startValue: double.NegativeInfinity);   // the trainer's clip warm-up
        Assert.False(never.Clipping);
    }

    [Fact]
    public void The_threshold_map_is_shared_by_the_batch()
    {
        // two images: λ_i is the mean over both images' pixels of the patch
        using var scope = torch.NewDisposeScope();
        var ce = torch.tensor(new float[] { 0, 0, 0, 4, /* image 2 */ 2, 2, 2, 2 }, new long[] { 2, 2, 2 });
        var valid = torch.ones(new long[] { 2, 2, 2 }, ScalarType.Bool);
        var result = GradientClippingLoss.Clip(ce, valid, 2, 10);
        Assert.Equal(1.5, result.GlobalMean, 6);
        Assert.Equal(1.5f, result.PatchMeans![0, 0, 0].item<float>(), 6);
        // image 1's 4 is above 1.5 (clipped) although it is its image's only non-zero pixel; image 2's 2s are clipped too
        Assert.Equal(new float[] { 0, 0, 0, 1.5f, 1.5f, 1.5f, 1.5f, 1.5f }, result.LossMap.data<float>().ToArray());
    }

    static (Tensor Logits, Tensor Target, double[] Ce) HandCase()
    {
        var logits = torch.tensor(new float[] { 2, 0, 0, 0, /* class 1: */ 0, 0, 3, 3 }, new long[] { 1, 2, 1, 4 }).requires_grad_(true);
        var target = torch.tensor(new long[] { 0, 1, 1, 0 }, new long[] { 1, 1, 4 });
        double[] ce = [Math.Log(1 + Math.Exp(-2)), Math.Log(2), Math.Log(1 + Math.Exp(-3)), Math.Log(1 + Math.Exp(3))];
        return (logits, target, ce);
    }

    [Fact]
    public void Compute_logs_the_parts_and_the_naive_decoder_is_the_plain_mean()
    {
        using var scope = torch.NewDisposeScope();
        var (logits, target, ce) = HandCase();
        // 1×4 map, S = 2: λ_global = mean CE = 0.979 ≤ 1.2; patch means 0.410 and 1.549; thresholds 0.979 and 1.549 clip pixel 3.
        var terms = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.GradientClipping, ClipSignal.CrossEntropy, 2, 1.2,
            IgnoredPixelsInMeans.CountAsZero, ClipPatchRemainder.SmallerEdgePatches);
        double threshold = (ce[2] + ce[3]) / 2;
        Assert.Equal((ce[0] + ce[1] + ce[2] + threshold) / 4, terms.Total.item<float>(), 5);
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value.item<float>());
        Assert.Equal(ce.Average(), parts["ce"], 5);
        Assert.Equal(ce.Average(), parts["lambda_global"], 5);
        Assert.Equal(0.75, parts["kept"], 5);
        Assert.Equal(1, parts["clipping"]);

        var naive = GradientClippingLoss.Compute(logits, target, SegmentationDecoderLoss.Naive, ClipSignal.CrossEntropy, 2, 1.2);
        Assert.Equal(ce.Average(), naive.Total.item<float>(), 5);
    }

    [Fact]
    public void Another_signal_clips_by_its_own_threshold_and_keeps_the_ce_value_without_gradient()
    {
        using var scope = torch.NewDisposeScope();
        var ce = torch.tensor(new float[] { 1, 2, 3, 4 }, new long[] { 1, 1, 4 }).requires_grad_(true);
        var signal = torch.tensor(new float[] { 0.1f, 0.9f, 0.2f, 0.2f }, new long[] { 1, 1, 4 });
        var valid = torch.ones(new long[] { 1, 1, 4 }, ScalarType.Bool);
        // λ_global 0.35; patches (S = 2, one row): 0.5 and 0.2 → thresholds 0.5, 0.35: pixel 1 (0.9) is clipped
        var result = GradientClippingLoss.Clip(ce, valid, 2, 1.2, IgnoredPixelsInMeans.CountAsZero, ClipPatchRemainder.SmallerEdgePatches, signal);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, result.LossMap.data<float>().ToArray());
        Assert.Equal(new[] { true, false, true, true }, result.Kept.data<bool>().ToArray());
        result.LossMap.sum().backward();
        Assert.Equal(new float[] { 1, 0, 1, 1 }, ce.grad!.data<float>().ToArray());
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
