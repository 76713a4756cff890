using TorchSharp;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Methods;
using WeakSeg.Methods.Localization;
using WeakSeg.Methods.WeakTr;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.WeakTr;

[Collection("Torch")]
public class WeakTrModelTests
{
    internal static WeakTrConfig Tiny(WeakTrFusion fusion = WeakTrFusion.Aaf, int classes = 3) => new()
    {
        NumClasses = classes,
        Fusion = fusion,
        FfnHidden = 3,
        Backbone = new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0 },
    };

    static double[] Values(Tensor t)
    {
        using var d = t.detach().to_type(ScalarType.Float64).cpu().contiguous();
        return d.data<double>().ToArray();
    }

    [Fact]
    public void Forward_matches_a_brute_force_reading_of_eq_2_to_6_on_the_models_own_attention()
    {
        // the pooled-attention-maps fusion (eq. 3 read literally); the official AAF's parity is in WeakTrReferenceFixtureTests
        torch.manual_seed(51);
        using var model = new WeakTrModel(Tiny(WeakTrFusion.PooledAttentionMaps) with { Pooling = WeakTrPooling.Average });
        NonUniformInit.Apply(model);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        using var output = model.Forward(torch.randn(2, 3, 16, 16));
        // The check below can only fail on an orientation or weighting error if the maps are far from uniform and asymmetric.
        var patchBlock = output.PatchAttention[0];
        Assert.True((patchBlock - patchBlock.T).abs().max().item<float>() > 1e-2, "P̂A must be asymmetric");
        Assert.True((output.HeadWeights[0] - output.HeadWeights[0].mean()).abs().max().item<float>() > 1e-3, "heads must be weighted differently");
        const int b = 2, c = 3, n = 4, t = c + n, heads = 2, layers = 2, kh = 4;

        // Class-token logits: mean over D; coarse CAM: the conv head on the patch grid, logits by GAP.
        TensorAssert.Close(output.Backbone.ClassTokens.mean(new long[] { 2 }), output.ClassLogits, 1e-6, "cls logits");
        var grid = output.Backbone.PatchTokens.transpose(1, 2).reshape(2, 16, 2, 2);
        var cam = nn.functional.conv2d(grid, p["head.weight"], p["head.bias"], padding: new long[] { 1, 1 });
        TensorAssert.Close(cam, output.CoarseCam, 1e-5, "coarse cam");
        TensorAssert.Close(cam.mean(new long[] { 2, 3 }), output.CoarseLogits, 1e-5, "coarse logits");

        // W' = σ(W2 · ReLU(W1 · W)) with W = average of each map, head-major (map i = head i / K of block i mod K).
        var attn = output.Backbone.Attentions.Select(Values).ToArray();            // [layer] → flat [B, H, T, T]
        double A(int bi, int i, int q, int k) => attn[i % layers][((bi * heads + i / layers) * t + q) * t + k];
        var w1 = Values(model.AttentionFusion!.InputLayer.weight!);                // [3, 4]
        var w2 = Values(model.AttentionFusion!.OutputLayer.weight!);               // [4, 3]
        var coarse = Values(output.CoarseCam);                                    // [B, C, N]
        var fine = Values(output.FineCam);
        var weights = Values(output.HeadWeights);
        for (int bi = 0; bi < b; bi++)
        {
            var pooled = new double[kh];
            for (int i = 0; i < kh; i++)
            {
                for (int q = 0; q < t; q++) for (int k = 0; k < t; k++) pooled[i] += A(bi, i, q, k);
                pooled[i] /= t * t;
            }
            var hidden = new double[3];
            for (int o = 0; o < 3; o++) { for (int i = 0; i < kh; i++) hidden[o] += w1[o * kh + i] * pooled[i]; hidden[o] = Math.Max(0, hidden[o]); }
            var wPrime = new double[kh];
            for (int i = 0; i < kh; i++)
            {
                double z = 0;
                for (int o = 0; o < 3; o++) z += w2[i * 3 + o] * hidden[o];
                wPrime[i] = 1 / (1 + Math.Exp(-z));
                Assert.Equal(wPrime[i], weights[bi * kh + i], 5);
            }
            // fine[c, j] = Σ_k P̂A[j, k] · ReLU(coarse)[c, k] · ĈA[c, k], with ĈA, P̂A the W'-weighted mean over the K·H maps.
            for (int cls = 0; cls < c; cls++)
                for (int j = 0; j < n; j++)
                {
                    double expected = 0;
                    for (int k = 0; k < n; k++)
                    {
                        double ca = 0, pa = 0;
                        for (int i = 0; i < kh; i++) { ca += wPrime[i] * A(bi, i, cls, c + k) / kh; pa += wPrime[i] * A(bi, i, c + j, c + k) / kh; }
                        expected += pa * Math.Max(0, coarse[(bi * c + cls) * n + k]) * ca;
                    }
                    double actual = fine[(bi * c + cls) * n + j];
                    Assert.True(Math.Abs(expected - actual) <= 1e-6 * Math.Max(1, Math.Abs(expected)), $"fine[{bi},{cls},{j}] {actual} != {expected}");
                }
        }
        TensorAssert.Close(output.FineCam.mean(new long[] { 2, 3 }), output.FineLogits, 1e-6, "fine logits");
        _ = layers;
    }

    [Fact]
    public void Loss_is_the_sum_of_three_soft_margin_terms_computed_by_hand()
    {
        torch.manual_seed(52);
        using var model = new WeakTrModel(Tiny());
        model.eval();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 16, 16);
        var labelValues = new double[] { 1, 0, 1, 0, 1, 0 };
        var labels = torch.tensor(labelValues.Select(v => (float)v).ToArray()).reshape(2, 3);
        double SoftMargin(Tensor logits)
        {
            var x = Values(logits);
            double sum = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double y = labelValues[i];
                sum += -(y * Math.Log(1 / (1 + Math.Exp(-x[i]))) + (1 - y) * Math.Log(Math.Exp(-x[i]) / (1 + Math.Exp(-x[i]))));
            }
            return sum / x.Length;   // mean over C, then over the batch (equal sizes)
        }
        double cls, coarse, fine;
        using (torch.no_grad())
        using (var output = model.Forward(images))
        {
            cls = SoftMargin(output.ClassLogits);
            coarse = SoftMargin(output.CoarseLogits);
            fine = SoftMargin(output.FineLogits);
        }
        var terms = model.ComputeLoss(images, labels);
        var parts = terms.Parts.ToDictionary(x => x.Name, x => x.Value.item<float>());
        Assert.Equal(new[] { "cls", "coarse", "fine" }, terms.Parts.Select(x => x.Name));
        Assert.Equal(cls, parts["cls"], 5);
        Assert.Equal(coarse, parts["coarse"], 5);
        Assert.Equal(fine, parts["fine"], 5);
        Assert.Equal(cls + coarse + fine, terms.Total.item<float>(), 5);
        Assert.True(cls > 0.1 && coarse > 0.1 && fine > 0.1);

        var bad = Assert.Throws<WeakSegException>(() => model.ComputeLoss(images, torch.zeros(2, 4)));
        Assert.Contains("labels must be [2, 3]", bad.Message);
    }

    [Fact]
    public void Fixed_random_weights_stay_fixed_while_the_ffn_learns()
    {
        torch.manual_seed(53);
        // 8 hidden units: with a constant input a ReLU unit whose pre-activation is negative never recovers, so a very small
        // FFN can be entirely dead (the FFN then cannot learn, in the paper's ablation as here).
        using var model = new WeakTrModel(Tiny(WeakTrFusion.FixedRandom) with { FfnHidden = 8 });
        Assert.Contains(model.named_buffers(), b => b.name == "fixed_head_weights");
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains("fixed", StringComparison.Ordinal));
        Assert.Contains("fixed_head_weights", model.state_dict().Keys);
        var fixedBefore = Values(model.FixedHeadWeights!);
        Assert.Equal(4, fixedBefore.Length);
        var ffnBefore = Values(model.AttentionFusion!.InputLayer.weight!).Concat(Values(model.AttentionFusion!.OutputLayer.weight!)).ToArray();

        using var images = torch.randn(2, 3, 16, 16);
        using var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).reshape(2, 3);
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-2);
        for (int step = 0; step < 2; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            model.ComputeLoss(images, labels).Total.backward();
            optimizer.step();
        }
        Assert.Equal(fixedBefore, Values(model.FixedHeadWeights!));
        var ffnAfter = Values(model.AttentionFusion!.InputLayer.weight!).Concat(Values(model.AttentionFusion!.OutputLayer.weight!)).ToArray();
        Assert.True(ffnBefore.Zip(ffnAfter).Max(x => Math.Abs(x.First - x.Second)) > 1e-3, "FFN weights moved");

        // W' = FFN(fixed W) is the same for every image.
        using var scope2 = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(images);
        var expected = model.AttentionFusion!.call(model.FixedHeadWeights!);
        TensorAssert.Close(expected.expand(2, -1), output.HeadWeights, 1e-6, "W' per image");
    }

    [Fact]
    public void Fine_loss_trains_only_the_ffn_when_attention_and_coarse_cam_are_detached()
    {
        static Dictionary<string, double> FineGradients(WeakTrConfig config)
        {
            torch.manual_seed(54);
            using var model = new WeakTrModel(config);
            using var scope = torch.NewDisposeScope();
            var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
            var terms = model.ComputeLoss(torch.randn(2, 3, 16, 16), labels);
            terms.Parts.Single(x => x.Name == "fine").Value.backward();
            return model.named_parameters().ToDictionary(x => x.name, x => x.parameter.grad is null ? 0.0 : x.parameter.grad.abs().sum().item<float>());
        }

        var detached = FineGradients(Tiny());
        Assert.True(detached["adaptive_attention_fusion.attn_head_ffn.0.weight"] > 0);
        Assert.True(detached["adaptive_attention_fusion.attn_head_ffn.2.weight"] > 0);
        Assert.All(detached.Where(x => !x.Key.StartsWith("adaptive_attention_fusion", StringComparison.Ordinal)), x => Assert.Equal(0, x.Value));

        var attached = FineGradients(Tiny() with { DetachAttention = false, DetachCoarseCam = false });
        Assert.True(attached["head.weight"] > 0);
        Assert.True(attached["blocks.0.attn.qkv.weight"] > 0);
        Assert.True(attached["adaptive_attention_fusion.attn_head_ffn.2.weight"] > 0);
    }

    [Theory]
    [InlineData(WeakTrFusion.Aaf)]
    [InlineData(WeakTrFusion.FixedRandom)]
    [InlineData(WeakTrFusion.MeanSum)]
    [InlineData(WeakTrFusion.PooledAttentionMaps)]
    public void Every_parameter_gets_a_finite_gradient(WeakTrFusion fusion)
    {
        torch.manual_seed(55);
        using var model = new WeakTrModel(Tiny(fusion));
        using var scope = torch.NewDisposeScope();
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 1 }).reshape(2, 3);
        model.ComputeLoss(torch.randn(2, 3, 16, 16), labels).Total.backward();
        TinyModelChecks.AssertEveryParameterButTheFinalNormHasAGradient(model);
    }

    [Fact]
    public void A_few_adamw_steps_on_a_fixed_batch_lower_the_loss()
    {
        torch.manual_seed(56);
        var config = Tiny() with { Backbone = Tiny().Backbone with { ImageSize = 32 } };
        using var model = new WeakTrModel(config);
        NonUniformInit.Apply(model, std: 0.02);   // the timm initialisation the backbone intends
        TinyModelChecks.AssertAFewStepsLowerTheLoss(model, steps: 20, (images, labels) =>
        {
            var loss = model.ComputeLoss(images, labels).Total;
            loss.backward();
            return loss;
        });
    }

    [Fact]
    public void Checkpoint_keys_per_fusion_mode()
    {
        torch.manual_seed(57);
        string[] Extra(WeakTrFusion fusion)
        {
            using var model = new WeakTrModel(Tiny(fusion));
            return model.state_dict().Keys.Where(k => !k.StartsWith("blocks.", StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        }
        string[] common = ["cls_token", "head.bias", "head.weight", "norm.bias", "norm.weight", "patch_embed.proj.bias", "patch_embed.proj.weight", "pos_embed"];
        Assert.Equal(common, Extra(WeakTrFusion.MeanSum).Except([]).ToArray());
        string[] headFfn = ["adaptive_attention_fusion.attn_head_ffn.0.weight", "adaptive_attention_fusion.attn_head_ffn.2.weight"];
        string[] featureFfn = ["adaptive_attention_fusion.attn_feat_ffn.0.bias", "adaptive_attention_fusion.attn_feat_ffn.0.weight",
            "adaptive_attention_fusion.attn_feat_ffn.1.bias", "adaptive_attention_fusion.attn_feat_ffn.1.weight"];
        Assert.Equal(common.Concat(headFfn).Concat(featureFfn).OrderBy(k => k, StringComparer.Ordinal), Extra(WeakTrFusion.Aaf));
        Assert.Equal(common.Concat(headFfn).OrderBy(k => k, StringComparer.Ordinal), Extra(WeakTrFusion.PooledAttentionMaps));
        Assert.Contains("fixed_head_weights", Extra(WeakTrFusion.FixedRandom));
        using var withBias = new WeakTrModel(Tiny() with { FfnBias = true });
        Assert.Contains("adaptive_attention_fusion.attn_head_ffn.0.bias", withBias.state_dict().Keys);
    }

    [Fact]
    public void Config_defaults_schedule_and_parsing()
    {
        var config = new WeakTrConfig { NumClasses = 20 };
        Assert.Equal(5e-5, config.LearningRate, 12);                    // 0.0004 × 64 / 512
        Assert.Equal(72, config.NumAttentionHeads);                       // DeiT-S: 12 × 6
        Assert.Equal(18, config.FfnHidden);
        Assert.Equal(20, config.BackboneConfig.NumClassTokens);
        var options = config.ToTrainerOptions(165);
        Assert.Equal(60 * 165, options.Steps);
        Assert.Equal(5 * 165, options.WarmupSteps);
        Assert.Equal(5e-5, options.BaseLr, 12);
        Assert.Equal(0.05, options.WeightDecay);
        Assert.Equal(64, options.BatchSize);
        Assert.Equal(2.5e-5, (config with { BatchSize = 32 }).LearningRate, 12);

        Assert.Equal(WeakTrFusion.MeanSum, WeakTrConfig.ParseFusion("mean-sum"));
        Assert.Equal(WeakTrFusion.Aaf, WeakTrConfig.ParseFusion(" AAF "));
        Assert.Equal(WeakTrFusion.FixedRandom, WeakTrConfig.ParseFusion("fixed_random"));
        Assert.Equal("fixed-random", WeakTrConfig.FusionName(WeakTrFusion.FixedRandom));
        Assert.Contains("unknown WeakTr fusion 'softmax'", Assert.Throws<WeakSegException>(() => WeakTrConfig.ParseFusion("softmax")).Message);

        var errors = (config with { FfnHidden = 0, WarmupEpochs = 70, NumClasses = 0 }).Validate();
        Assert.Contains(errors, e => e.StartsWith("FfnHidden", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("WarmupEpochs", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("NumClasses", StringComparison.Ordinal));
        Assert.Contains("invalid WeakTr configuration", Assert.Throws<WeakSegException>(() => new WeakTrModel(config with { FfnHidden = 0 })).Message);
    }

    [Fact]
    public void The_method_trains_with_the_models_loss()
    {
        torch.manual_seed(58);
        using var method = new WeakTrMethod(Tiny());
        var model = method.Network;
        model.eval();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 16, 16);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
        ITrainable trainable = method;
        Assert.Same(model, trainable.Model);
        var viaAdapter = trainable.ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(0, 1, 1e-3, new Random(0)));
        Assert.Equal(model.ComputeLoss(images, labels).Total.item<float>(), viaAdapter.Total.item<float>(), 6);
    }
}

[Collection("Torch")]
public class WeakTrInferenceTests
{
    [Fact]
    public void Multi_scale_flip_inference_sums_the_upsampled_fine_cams_of_each_view()
    {
        torch.manual_seed(61);
        var config = WeakTrModelTests.Tiny() with { Backbone = WeakTrModelTests.Tiny().Backbone with { ImageSize = 32 } };
        using var method = new WeakTrMethod(config);
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
            return output.FineCam.relu();
        });
        TensorAssert.Close(expected, accumulated, 1e-5, "accumulated");
        Assert.True(expected.max().item<float>() > 0);

        var localized = MultiScaleLocalization.LocalizeImage(method, image, new[] { 3, 1 }, options);   // one-based classes
        TensorAssert.Close(expected[2] / expected[2].max(), localized[0], 1e-5, "class 3 = map 2, normalised");
        TensorAssert.Close(expected[0] / expected[0].max(), localized[1], 1e-5, "class 1 = map 0, normalised");
    }

    [Fact]
    public void The_shared_multi_scale_helper_unflips_and_sums_every_view()
    {
        torch.manual_seed(62);
        using var model = new MctFormerModel(new MctFormerConfig
        {
            NumClasses = 3, CamLayers = 2,
            Backbone = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0 },
        });
        using var scope = torch.NewDisposeScope();
        var image = torch.randn(3, 40, 24);
        // Map = the first input channel itself: the image and its flip come back un-flipped, so scale 1 with flip gives 2 × channel 0,
        // and an extra scale 0.5 adds that channel downsampled then upsampled (bilinear, both ways).
        var twice = MultiScaleCam.Accumulate(model, 8, image, [1.0], flip: true, views => views.narrow(1, 0, 1));
        TensorAssert.Close(2 * image.narrow(0, 0, 1), twice, 1e-6, "scale 1 + flip");
        var half = nn.functional.interpolate(image.unsqueeze(0), size: new long[] { 16, 16 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var back = nn.functional.interpolate(half.narrow(1, 0, 1), size: new long[] { 40, 24 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var two = MultiScaleCam.Accumulate(model, 8, image, [1.0, 0.5], flip: false, views => views.narrow(1, 0, 1));
        TensorAssert.Close(image.narrow(0, 0, 1) + back.squeeze(0), two, 1e-5, "scales 1 and 0.5 (40×24 → 16×16: sides rounded half-to-even to the patch)");
        Assert.Contains("scales", Assert.Throws<WeakSegException>(() => MultiScaleCam.Accumulate(model, 8, image, [], true, v => v)).Message);
    }

    [Fact]
    public void Coarse_and_cross_attention_map_kinds()
    {
        torch.manual_seed(63);
        using var method = new WeakTrMethod(WeakTrModelTests.Tiny());
        method.Model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = torch.randn(1, 3, 16, 16);
        using var output = method.Network.Forward(images);
        TensorAssert.Close(output.FineCam.relu(), method.PatchGridMaps(images, LocalizationMapKind.Refined), 0, "fine");
        TensorAssert.Close(output.CoarseCam.relu(), method.PatchGridMaps(images, LocalizationMapKind.Fused), 0, "coarse");
        TensorAssert.Close(output.CrossAttention.relu(), method.PatchGridMaps(images, LocalizationMapKind.ClassToPatch), 0, "cross");
    }
}

[Collection("Torch")]
public class WeakTrTensorLifetimeTests
{
    [Theory]
    [InlineData(WeakTrFusion.Aaf)]
    [InlineData(WeakTrFusion.FixedRandom)]
    public void Training_steps_and_inference_do_not_leak_tensors(WeakTrFusion fusion)
    {
        torch.manual_seed(64);
        using var method = new WeakTrMethod(WeakTrModelTests.Tiny(fusion, classes: 2) with { Backbone = TinyModelChecks.LeakCheckBackbone });
        var model = method.Network;
        TinyModelChecks.AssertTrainingAndInferenceDoNotLeak(model,
            (images, labels) =>
            {
                var terms = model.ComputeLoss(images, labels);
                terms.Total.backward();
                _ = terms.Parts.Select(p => p.Value.item<float>()).ToArray();
                return terms.Total;
            },
            image => MultiScaleLocalization.LocalizeImage(method, image, new[] { 1, 2 }, new LocalizationOptions { Scales = new[] { 1.0, 1.5 } }));
    }
}
