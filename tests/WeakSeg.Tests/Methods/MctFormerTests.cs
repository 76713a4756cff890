using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.Localization;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Training;
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

    /// <summary>The loss training computes (<see cref="MctFormerMethod.ComputeLoss"/>) of a batch, back-propagated; returns the loss.</summary>
    internal static Tensor Backward(MctFormerMethod method, Tensor images, Tensor labels)
    {
        var loss = method.ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(0, 1, 1e-3, new Random(0))).Total;
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
        var loss = MctFormerLoss.Compute(output, labels);
        TensorAssert.Close(ClassificationLoss.MultilabelSoftMargin(output.ClassLogits, labels), loss.Total, 0, "V1 loss");
        Assert.Equal(["cls"], loss.Parts.Select(p => p.Name));
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
        using var method = new MctFormerMethod(Tiny(MctFormerVariant.V2));
        TinyModelChecks.AssertAFewStepsLowerTheLoss(method.Model, steps: 10, (images, labels) => Backward(method, images, labels));
    }

    [Fact]
    public void Every_parameter_gets_a_finite_gradient()
    {
        torch.manual_seed(24);
        using var method = new MctFormerMethod(Tiny(MctFormerVariant.V2));
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).reshape(2, 3);
        Backward(method, images, labels);
        TinyModelChecks.AssertEveryParameterButTheFinalNormHasAGradient(method.Model);
    }

    [Fact]
    public void Multi_scale_flip_inference_sums_upsampled_maps_of_each_view()
    {
        torch.manual_seed(25);
        using var method = new MctFormerMethod(Tiny(MctFormerVariant.V2));
        var model = method.Network;
        model.train();
        using var scope = torch.NewDisposeScope();
        var image = torch.randn(3, 32, 32);
        var options = new LocalizationOptions { Scales = new[] { 1.0, 0.5 }, Flip = true, MapKind = LocalizationMapKind.Refined };
        var accumulated = MultiScaleLocalization.AccumulatedMaps(method, image, options);
        Assert.True(model.training);                                   // mode restored

        var expected = TinyModelChecks.MultiScaleFlipReference(model, image, input =>
        {
            using var output = model.Forward(input);
            using var maps = MctFormerMaps.Localize(output, 2);
            return maps.Refined.clone();
        });
        TensorAssert.Close(expected, accumulated, 1e-5, "accumulated");
        var localized = MultiScaleLocalization.LocalizeImage(method, image, new[] { 2 }, options);          // class 2 = map 1
        Assert.Equal(new long[] { 1, 32, 32 }, localized.shape);
        TensorAssert.Close(expected[1] / expected[1].max(), localized[0], 1e-5, "class 2 normalised");
    }

    [Fact]
    public void Each_map_kind_is_the_matching_map_of_one_forward_pass()
    {
        torch.manual_seed(27);
        using var method = new MctFormerMethod(Tiny(MctFormerVariant.V2));
        method.Model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = torch.randn(1, 3, 32, 32);
        using var output = method.Network.Forward(images);
        using var maps = MctFormerMaps.Localize(output, 2);
        TensorAssert.Close(maps.ClassToPatch, method.PatchGridMaps(images, LocalizationMapKind.ClassToPatch), 0, "class-to-patch");
        TensorAssert.Close(maps.Maps, method.PatchGridMaps(images, LocalizationMapKind.Fused), 0, "fused");
        TensorAssert.Close(maps.Refined, method.PatchGridMaps(images, LocalizationMapKind.Refined), 0, "refined");
    }
}

[Collection("Torch")]
public class MctFormerTensorLifetimeTests
{
    [Fact]
    public void Training_steps_and_inference_do_not_leak_tensors()
    {
        torch.manual_seed(26);
        using var method = new MctFormerMethod(new MctFormerConfig { NumClasses = 2, CamLayers = 1, Backbone = TinyModelChecks.LeakCheckBackbone });
        TinyModelChecks.AssertTrainingAndInferenceDoNotLeak(method.Model, (images, labels) => MctFormerTests.Backward(method, images, labels),
            image => MultiScaleLocalization.LocalizeImage(method, image, new[] { 1, 2 }, new LocalizationOptions { Scales = new[] { 1.0, 1.5 } }));
    }
}
