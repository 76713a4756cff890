using TorchSharp;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

[Collection("Torch")]
public class MctFormerTests
{
    static MctFormerConfig Tiny(MctFormerVariant variant, int classes = 3) => new()
    {
        Variant = variant,
        NumClasses = classes,
        CamLayers = 2,
        Backbone = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0 },
    };

    /// <summary>MCTformer loss of a batch, back-propagated; returns the loss.</summary>
    internal static Tensor Backward(MctFormerModel model, Tensor images, Tensor labels)
    {
        using var output = model.Forward(images);
        var loss = MctFormerLoss.Total(output, labels);
        loss.backward();
        return loss;
    }

    /// <summary>
    /// Hand-made attention: L = 2, B = 1, H = 2, C = 2 class tokens, 2×2 patches (T = 6). Heads are M ± Δ so their mean is
    /// M_l[i, j] = 100·l + 10·i + j.
    /// </summary>
    static List<Tensor> HandMadeAttention()
    {
        var list = new List<Tensor>();
        for (int l = 0; l < 2; l++)
        {
            var values = new float[2 * 36];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                {
                    float m = 100 * l + 10 * i + j, delta = (i * 7 + j * 3) % 5;
                    values[i * 6 + j] = m + delta;
                    values[36 + i * 6 + j] = m - delta;
                }
            list.Add(torch.tensor(values).reshape(1, 2, 6, 6));
        }
        return list;
    }

    [Fact]
    public void Map_functions_on_a_hand_made_attention_tensor()
    {
        using var scope = torch.NewDisposeScope();
        var headMean = AttentionMaps.HeadMean(HandMadeAttention());                              // [2, 1, 6, 6]
        Assert.Equal(100f + 10 * 3 + 4, headMean[1, 0, 3, 4].item<float>());

        // Last layer only: map[c, p] = 100 + 10c + (2 + p).
        var last1 = AttentionMaps.ClassToPatch(headMean, 2, 1, 2, 2);
        TensorAssert.Close(torch.tensor(new float[] { 102, 103, 104, 105, 112, 113, 114, 115 }).reshape(1, 2, 2, 2), last1, 0, "last 1");
        // Last two layers: (10c + 2 + p) + (100 + 10c + 2 + p) = 104 + 20c + 2p.
        var last2 = AttentionMaps.ClassToPatch(headMean, 2, 2, 2, 2);
        TensorAssert.Close(torch.tensor(new float[] { 104, 106, 108, 110, 124, 126, 128, 130 }).reshape(1, 2, 2, 2), last2, 0, "last 2");

        // Affinity over all layers between patches i', j' (tokens 2 + i', 2 + j'): 144 + 20i' + 2j'.
        var affinity = AttentionMaps.PatchAffinity(headMean, 2);
        var expectedAffinity = new float[16];
        for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) expectedAffinity[i * 4 + j] = 144 + 20 * i + 2 * j;
        TensorAssert.Close(torch.tensor(expectedAffinity).reshape(1, 4, 4), affinity, 0, "affinity");

        // Refined[c, i'] = Σ_j' affinity[i', j'] · map[c, j'].
        var refined = AttentionMaps.Refine(affinity, last2);
        var expectedRefined = new float[8];
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 4; i++)
            {
                double sum = 0;
                for (int j = 0; j < 4; j++) sum += (144 + 20 * i + 2 * j) * (104 + 20 * c + 2 * j);
                expectedRefined[c * 4 + i] = (float)sum;
            }
        TensorAssert.Close(torch.tensor(expectedRefined).reshape(1, 2, 2, 2), refined, 1e-6, "refined");

        Assert.Contains("lastLayers must be in [1, 2]", Assert.Throws<WeakSegException>(() => AttentionMaps.ClassToPatch(headMean, 2, 3, 2, 2)).Message);
        Assert.Contains("expected 2 class tokens + 3×3 patches", Assert.Throws<WeakSegException>(() => AttentionMaps.ClassToPatch(headMean, 2, 1, 3, 3)).Message);
    }

    [Fact]
    public void Fused_map_multiplies_by_relu_of_a_detached_patch_cam()
    {
        using var scope = torch.NewDisposeScope();
        var classToPatch = torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 1, 2, 2).requires_grad_(true);
        var patchCam = torch.tensor(new float[] { -1, 0.5f, 2, -3 }).reshape(1, 1, 2, 2).requires_grad_(true);
        var fused = MctFormerMaps.FuseWithPatchCam(classToPatch, patchCam);
        TensorAssert.Close(torch.tensor(new float[] { 0, 1, 6, 0 }).reshape(1, 1, 2, 2), fused, 0, "fused");
        fused.sum().backward();
        Assert.True(patchCam.grad is null || patchCam.grad.abs().sum().item<float>() == 0);
        TensorAssert.Close(torch.tensor(new float[] { 0, 0.5f, 2, 0 }).reshape(1, 1, 2, 2), classToPatch.grad!, 0, "grad");
    }

    [Fact]
    public void Multilabel_soft_margin_matches_a_hand_computation()
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(new float[] { 0, 2, -1, 3 }).reshape(2, 2);
        var labels = torch.tensor(new float[] { 1, 0, 1, 1 }).reshape(2, 2);
        // sample 0: (log 2 + log(1 + e²)) / 2 ; sample 1: (log(1 + e) + log(1 + e⁻³)) / 2 ; then the batch mean.
        double s0 = (Math.Log(2) + Math.Log(1 + Math.Exp(2))) / 2, s1 = (Math.Log(1 + Math.E) + Math.Log(1 + Math.Exp(-3))) / 2;
        Assert.Equal((s0 + s1) / 2, MctFormerLoss.MultilabelSoftMargin(logits, labels).item<float>(), 5);
    }

    [Fact]
    public void V1_has_no_head_and_its_logits_are_the_class_token_means()
    {
        torch.manual_seed(21);
        using var model = new MctFormerModel(Tiny(MctFormerVariant.V1));
        Assert.DoesNotContain(model.named_parameters(), p => p.name.StartsWith("head", StringComparison.Ordinal));
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 0, 1 }).reshape(2, 3);
        using var output = model.Forward(images);
        Assert.Null(output.PatchCam);
        TensorAssert.Close(output.Backbone.ClassTokens.mean(new long[] { 2 }), output.ClassLogits, 1e-6, "logits");
        TensorAssert.Close(MctFormerLoss.MultilabelSoftMargin(output.ClassLogits, labels), MctFormerLoss.Total(output, labels), 0, "V1 loss");
        using var maps = MctFormerMaps.Localize(output, 2);
        Assert.Same(maps.ClassToPatch, maps.Maps);
    }

    [Fact]
    public void V2_patch_logits_are_the_mean_of_the_head_applied_to_the_patch_grid()
    {
        torch.manual_seed(22);
        using var model = new MctFormerModel(Tiny(MctFormerVariant.V2));
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Equal(new long[] { 3, 16, 3, 3 }, p["head.weight"].shape);
        var images = torch.randn(1, 3, 32, 32);
        using var output = model.Forward(images);
        var grid = output.Backbone.PatchTokens.transpose(1, 2).reshape(1, 16, 4, 4);
        var cam = nn.functional.conv2d(grid, p["head.weight"], p["head.bias"], padding: new long[] { 1, 1 });
        TensorAssert.Close(cam, output.PatchCam!, 1e-5, "patch cam");
        TensorAssert.Close(cam.mean(new long[] { 2, 3 }), output.PatchLogits!, 1e-5, "patch logits");
        // MCTformer applies no final norm: the class tokens are the raw block outputs.
        using var blocks = model.ForwardBlocks(images);
        TensorAssert.Close(blocks.ClassTokens, output.Backbone.ClassTokens, 0, "no final norm");
    }

    [Fact]
    public void A_few_optimisation_steps_on_a_fixed_batch_lower_the_loss()
    {
        torch.manual_seed(23);
        using var model = new MctFormerModel(Tiny(MctFormerVariant.V2));
        TinyModelChecks.AssertAFewStepsLowerTheLoss(model, steps: 10, (images, labels) => Backward(model, images, labels));
    }

    [Fact]
    public void Every_parameter_gets_a_finite_gradient()
    {
        torch.manual_seed(24);
        using var model = new MctFormerModel(Tiny(MctFormerVariant.V2));
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).reshape(2, 3);
        using var output = model.Forward(images);
        MctFormerLoss.Total(output, labels).backward();
        TinyModelChecks.AssertEveryParameterButTheFinalNormHasAGradient(model);
    }

    [Fact]
    public void Normalisation_and_class_selection_by_hand()
    {
        using var scope = torch.NewDisposeScope();
        var maps = torch.tensor(new float[] { 1, 2, 4, -1, /* class 1 */ 0, 0, 0, 0, /* class 2 */ 0.5f, 0.25f, 0, 0.125f }).reshape(3, 2, 2);
        var normalised = MctFormerInference.NormalizePerClass(maps);
        TensorAssert.Close(torch.tensor(new float[] { 0.25f, 0.5f, 1, 0, 0, 0, 0, 0, 1, 0.5f, 0, 0.25f }).reshape(3, 2, 2), normalised, 0, "normalised");
        var selected = MctFormerInference.SelectClasses(normalised, new[] { 2, 0 });
        TensorAssert.Close(torch.tensor(new float[] { 1, 0.5f, 0, 0.25f, 0.25f, 0.5f, 1, 0 }).reshape(2, 2, 2), selected, 0, "selected");
        Assert.Contains("class index 3", Assert.Throws<WeakSegException>(() => MctFormerInference.SelectClasses(maps, new[] { 3 })).Message);
    }

    [Fact]
    public void Multi_scale_flip_inference_sums_upsampled_maps_of_each_view()
    {
        torch.manual_seed(25);
        using var model = new MctFormerModel(Tiny(MctFormerVariant.V2));
        model.train();
        using var scope = torch.NewDisposeScope();
        var image = torch.randn(3, 32, 32);
        var options = new MctFormerInferenceOptions { Scales = new[] { 1.0, 0.5 }, Flip = true, MapKind = MctFormerMapKind.Refined };
        var accumulated = MctFormerInference.AccumulatedMaps(model, image, options);
        Assert.True(model.training);                                   // mode restored

        var expected = TinyModelChecks.MultiScaleFlipReference(model, image, input =>
        {
            using var output = model.Forward(input);
            using var maps = MctFormerMaps.Localize(output, 2);
            return maps.Refined.clone();
        });
        TensorAssert.Close(expected, accumulated, 1e-5, "accumulated");
        var localized = MctFormerInference.LocalizeImage(model, image, new[] { 1 }, options);
        Assert.Equal(new long[] { 1, 32, 32 }, localized.shape);
        Assert.Equal(1f, localized.max().item<float>(), 5);
    }
}

[Collection("Torch")]
public class MctFormerTensorLifetimeTests
{
    [Fact]
    public void Training_steps_and_inference_do_not_leak_tensors()
    {
        torch.manual_seed(26);
        using var model = new MctFormerModel(new MctFormerConfig { NumClasses = 2, CamLayers = 1, Backbone = TinyModelChecks.LeakCheckBackbone });
        TinyModelChecks.AssertTrainingAndInferenceDoNotLeak(model, (images, labels) => MctFormerTests.Backward(model, images, labels),
            image => MctFormerInference.LocalizeImage(model, image, new[] { 0, 1 }, new MctFormerInferenceOptions { Scales = new[] { 1.0, 1.5 } }));
    }
}
