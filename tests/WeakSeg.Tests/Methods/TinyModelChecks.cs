using TorchSharp;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

/// <summary>
/// Checks the MCTformer and WeakTr tests run on their tiny models: the fixed inputs, optimizer and loops they share. The
/// <c>backward</c> delegates compute the model's loss of (images, labels), call backward on it and return it.
/// </summary>
internal static class TinyModelChecks
{
    /// <summary>16×16 input, 2×2 patches of 8, D = 8, 2 blocks of 2 heads, drop path on (so training draws random numbers).</summary>
    public static VitConfig LeakCheckBackbone => new() { ImageSize = 16, PatchSize = 8, EmbedDim = 8, Depth = 2, NumHeads = 2, DropPathRate = 0.1 };

    /// <summary>
    /// For a 2-class model on <see cref="LeakCheckBackbone"/>: draws a batch of 2 images and one image, then asserts that
    /// training steps (AdamW, lr 1e-3) each followed by <paramref name="localize"/> on the image add no live tensors.
    /// </summary>
    public static void AssertTrainingAndInferenceDoNotLeak(nn.Module model, Func<Tensor, Tensor, Tensor> backward, Func<Tensor, Tensor> localize)
    {
        using var images = torch.randn(2, 3, 16, 16);
        using var image = torch.randn(3, 16, 16);
        using var labels = torch.tensor(new float[] { 1, 0, 0, 1 }).reshape(2, 2);
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-3);

        void Step()
        {
            using var scope = torch.NewDisposeScope();
            model.train();
            optimizer.zero_grad();
            backward(images, labels);
            optimizer.step();
            using var maps = localize(image);
        }

        LeakCheck.AssertNoGrowth(Step);
    }

    /// <summary>
    /// For a 3-class model with a 32×32 input: <paramref name="steps"/> AdamW steps (lr 3e-3) in train mode on one fixed batch of
    /// 4 random images keep the loss finite and bring it below 0.7 × the first step's.
    /// </summary>
    public static void AssertAFewStepsLowerTheLoss(nn.Module model, int steps, Func<Tensor, Tensor, Tensor> backward)
    {
        model.train();
        using var images = torch.randn(4, 3, 32, 32);
        using var labels = torch.tensor(new float[] { 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0 }).reshape(4, 3);
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 3e-3);
        var losses = new List<float>();
        for (int step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = backward(images, labels);
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        Assert.True(losses[^1] < 0.7f * losses[0], $"loss {losses[0]} → {losses[^1]}");
    }

    /// <summary>
    /// The reference for multi-scale + flip inference at scales 1 and 0.5 on a 3×32×32 image of a 3-class model, in eval mode
    /// under no_grad: the sum over the four views of <paramref name="viewMaps"/> ([1, 3, h, w]) upsampled (bilinear) to 32×32 and
    /// un-flipped, [3, 32, 32].
    /// </summary>
    public static Tensor MultiScaleFlipReference(nn.Module model, Tensor image, Func<Tensor, Tensor> viewMaps)
    {
        model.eval();
        Tensor expected = torch.zeros(3, 32, 32);
        using (torch.no_grad())
        {
            foreach (var size in new long[] { 32, 16 })
            {
                var scaled = size == 32 ? image.unsqueeze(0) : nn.functional.interpolate(image.unsqueeze(0), size: new[] { size, size }, mode: InterpolationMode.Bilinear, align_corners: false);
                foreach (var flip in new[] { false, true })
                {
                    var up = nn.functional.interpolate(viewMaps(flip ? scaled.flip(3) : scaled), size: new long[] { 32, 32 }, mode: InterpolationMode.Bilinear, align_corners: false);
                    if (flip) up = up.flip(3);
                    expected = expected + up.squeeze(0);
                }
            }
        }
        return expected;
    }

    /// <summary>After a backward pass: every parameter but the unused final norm has a finite, non-zero gradient; the norm has none.</summary>
    public static void AssertEveryParameterButTheFinalNormHasAGradient(nn.Module model)
    {
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (name.StartsWith("norm.", StringComparison.Ordinal)) { Assert.Null(parameter.grad); continue; }   // unused final norm
            Assert.NotNull(parameter.grad);
            Assert.True(parameter.grad!.isfinite().all().item<bool>(), name);
            Assert.True(parameter.grad!.abs().sum().item<float>() > 0, name);
        }
    }

    /// <summary>
    /// Compares WeakSeg's summed multi-scale maps with an official <c>generate_attention_maps_ms</c> output (MCTformer, WeakTr): each
    /// present class of <paramref name="label"/> min-max normalised, (x − min) / (max − min + 1e-8), as the official code saves it;
    /// absent classes are stored as zeros. sum, expected [C, H, W]; label [C].
    /// </summary>
    public static void AssertMatchesOfficialMinMaxMaps(Tensor expected, Tensor sum, Tensor label, double tolerance, string name)
    {
        int present = 0;
        for (int c = 0; c < label.shape[0]; c++)
        {
            if (label[c].item<float>() == 0)
            {
                Assert.Equal(0f, expected[c].abs().max().item<float>());
                continue;
            }
            present++;
            var map = sum[c];
            var min = map.min();
            var normalised = map.sub(min).div(map.max().sub(min).add(1e-8));
            TensorAssert.Close(expected[c], normalised, tolerance, $"{name} class {c}");
        }
        Assert.True(present > 0);
    }
}
