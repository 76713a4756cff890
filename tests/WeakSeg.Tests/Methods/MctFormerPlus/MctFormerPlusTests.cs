using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormerPlus;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.MctFormerPlus;

/// <summary>MCTformer+ pieces checked by hand computation: GWRP, the contrastive class-token loss, the checkpoint init (official and
/// corrected), the weight-decay grouping of the position embeddings, the registration and the presets.</summary>
[Collection("Torch")]
public class MctFormerPlusTests
{
    static MctFormerPlusConfig Small(int imageSize = 32, int classes = 3, MctFormerPlusPositionInit init = MctFormerPlusPositionInit.NearestDouble) => new()
    {
        NumClasses = classes,
        PositionInit = init,
        Backbone = MctFormerPlusConfig.WithPatchResize(new VitConfig { ImageSize = imageSize, PatchSize = 8, EmbedDim = 8, Depth = 2, NumHeads = 2, DropPathRate = 0 }),
    };

    [Fact]
    public void Gwrp_weights_the_sorted_scores_by_powers_of_the_decay()
    {
        using var scope = torch.NewDisposeScope();
        var maps = torch.tensor(new float[] { 1, 4, 2, 3, -1, 0, 5, 0 }).reshape(1, 2, 2, 2);
        var logits = MctFormerPlusModel.GlobalWeightedRankingPooling(maps, 0.5);
        // class 0 sorted 4, 3, 2, 1 with weights 1, 1/2, 1/4, 1/8: (4 + 1.5 + 0.5 + 0.125) / 1.875; class 1 sorted 5, 0, 0, −1
        Assert.Equal(6.125 / 1.875, logits[0, 0].item<float>(), 5);
        Assert.Equal((5 - 0.125) / 1.875, logits[0, 1].item<float>(), 5);
        Assert.Equal(2.5, MctFormerPlusModel.GlobalWeightedRankingPooling(maps, 1.0)[0, 0].item<float>(), 6);          // d = 1: the mean
        Assert.Equal(4.0, MctFormerPlusModel.GlobalWeightedRankingPooling(maps, 1e-6)[0, 0].item<float>(), 4);         // d → 0: the max
        Assert.Throws<WeakSegException>(() => MctFormerPlusModel.GlobalWeightedRankingPooling(maps, 0));
    }

    [Fact]
    public void Contrastive_class_token_loss_matches_a_hand_computation()
    {
        using var scope = torch.NewDisposeScope();
        // one layer, two images, C = 3 tokens in D = 2: t0 = (1, 0), t1 = (0, 2) (normalised: (0, 1)), t2 = (−3, 0) (normalised: (−1, 0))
        var tokens = torch.tensor(new float[] { 1, 0, 0, 2, -3, 0 }).reshape(1, 1, 3, 2).expand(1, 2, 3, 2).contiguous();
        // cosines: S = [[1, 0, −1], [0, 1, 0], [−1, 0, 1]]; ℓ_c = −log(e^1 / Σ_c' e^S_c'c)
        double l0 = -Math.Log(Math.E / (Math.E + 1 + Math.Exp(-1))), l1 = -Math.Log(Math.E / (1 + Math.E + 1));
        var labels = torch.tensor(new float[] { 1, 1, 0, 0, 0, 0 }).reshape(2, 3);
        var loss = MctFormerPlusLoss.ContrastiveClassTokens(tokens, labels);
        // image 0: (ℓ0 + ℓ1) / 2; image 1 has no label: 0 / (0 + 1e-8) = 0; mean over the 2 images
        Assert.Equal((l0 + l1) / 2 / 2, loss.item<float>(), 5);

        // two layers: the per-image sum is averaged over the layers
        var second = torch.tensor(new float[] { 1, 0, 1, 0, 0, 1 }).reshape(1, 1, 3, 2).expand(1, 2, 3, 2);   // S = [[1,1,0],[1,1,0],[0,0,1]]
        double m0 = -Math.Log(Math.E / (Math.E + Math.E + 1));
        var both = torch.cat(new[] { tokens, second }, 0);
        Assert.Equal(((l0 + l1) / 2 + (m0 + m0) / 2) / 2 / 2, MctFormerPlusLoss.ContrastiveClassTokens(both, labels).item<float>(), 5);
        Assert.Throws<WeakSegException>(() => MctFormerPlusLoss.ContrastiveClassTokens(tokens, torch.ones(2, 4)));
    }

    static Dictionary<string, Tensor> DeitLikeCheckpoint(int side, int dim = 8)
    {
        var g = new Generator(7);
        return new Dictionary<string, Tensor>
        {
            ["cls_token"] = torch.randn(1, 1, dim, generator: g),
            ["pos_embed"] = torch.randn(1, 1 + side * side, dim, generator: g),
            ["patch_embed.proj.weight"] = torch.randn(dim, 3, 8, 8, generator: g),
            ["head.weight"] = torch.randn(1000, dim, generator: g),   // a classifier of another shape: skipped
        };
    }

    [Fact]
    public void Official_init_repeats_the_class_rows_and_doubles_the_patch_grid_by_nearest_repetition()
    {
        using var dir = TestPaths.NewTempDir();
        using var scope = torch.NewDisposeScope();
        var checkpoint = DeitLikeCheckpoint(side: 2);                                  // 2×2 grid → the model's 4×4 (32 px / 8)
        var path = dir.File("deit.safetensors");
        SafetensorsFile.Write(path, checkpoint);
        using var method = new MctFormerPlusMethod(Small());
        var report = ((IWsssMethod)method).ImportTimmWeights(path);
        Assert.Contains("cls_token", report.Loaded);
        Assert.Contains("pos_embed_cls", report.Loaded);
        Assert.Contains("pos_embed_pat", report.Loaded);
        Assert.Contains("patch_embed.proj.weight", report.Loaded);
        Assert.Equal(["head.weight"], report.Skipped.Select(s => s.Key));
        Assert.Empty(report.Unexpected);

        var model = method.Network;
        var cls = checkpoint["cls_token"][0, 0];
        var pos = checkpoint["pos_embed"][0];                                          // [1 + 4, D]
        for (int c = 0; c < 3; c++)
        {
            TensorAssert.Close(cls, model.ClassTokenParameter[0, c], 0, $"cls_token {c}");
            TensorAssert.Close(pos[0], model.ClassPositionEmbeddingParameter![0, c], 0, $"pos_embed_cls {c}");
        }
        for (int r = 0; r < 4; r++)
            for (int col = 0; col < 4; col++)
                TensorAssert.Close(pos[1 + (r / 2) * 2 + col / 2], model.PatchPositionEmbeddingParameter![0, r * 4 + col], 0, $"pos_embed_pat ({r}, {col})");

        // The official init cannot serve a grid that is not twice the checkpoint's: one clear error naming the file and the fix.
        using var other = new MctFormerPlusMethod(Small(imageSize: 24));               // 3×3
        var e = Assert.Throws<WeakSegException>(() => ((IWsssMethod)other).ImportTimmWeights(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("2×2 grid 2×2 (4×4), but the model's grid is 3×3", e.Message);
        Assert.Contains("position_init=Resize", e.Message);
    }

    [Fact]
    public void Corrected_init_resizes_the_patch_grid_bicubically_to_any_model_grid()
    {
        using var scope = torch.NewDisposeScope();
        var checkpoint = DeitLikeCheckpoint(side: 2);
        var prepared = MctFormerPlusWeights.FromJointPositionEmbedding(checkpoint, 3, 3, MctFormerPlusPositionInit.Resize);
        Assert.False(prepared.ContainsKey("pos_embed"));
        var grid = checkpoint["pos_embed"].narrow(1, 1, 4).reshape(1, 2, 2, 8).permute(0, 3, 1, 2);
        var expected = nn.functional.interpolate(grid, size: new long[] { 3, 3 }, mode: InterpolationMode.Bicubic, align_corners: false)
            .permute(0, 2, 3, 1).reshape(1, 9, 8);
        TensorAssert.Close(expected, prepared["pos_embed_pat"], 1e-6, "pos_embed_pat");
        Assert.Equal(new long[] { 1, 3, 8 }, prepared["pos_embed_cls"].shape);

        // at 2× the corrected init is the bicubic resize, not the nearest repetition
        var doubled = MctFormerPlusWeights.FromJointPositionEmbedding(checkpoint, 3, 4, MctFormerPlusPositionInit.Resize)["pos_embed_pat"];
        var nearest = MctFormerPlusWeights.FromJointPositionEmbedding(checkpoint, 3, 4, MctFormerPlusPositionInit.NearestDouble)["pos_embed_pat"];
        Assert.True(doubled.sub(nearest).abs().max().item<float>() > 1e-2);

        // an MCTformer+ checkpoint (no joint pos_embed) passes unchanged; other class-token counts are refused
        var plus = new Dictionary<string, Tensor> { ["pos_embed_pat"] = torch.zeros(1, 16, 8) };
        Assert.Same(plus["pos_embed_pat"], MctFormerPlusWeights.FromJointPositionEmbedding(plus, 3, 4, MctFormerPlusPositionInit.NearestDouble)["pos_embed_pat"]);
        var two = new Dictionary<string, Tensor>(checkpoint) { ["cls_token"] = torch.zeros(1, 2, 8), ["pos_embed"] = torch.zeros(1, 6, 8) };
        var e = Assert.Throws<WeakSegException>(() => MctFormerPlusWeights.FromJointPositionEmbedding(two, 3, 4, MctFormerPlusPositionInit.NearestDouble));
        Assert.Contains("checkpoint has 2 class tokens", e.Message);
    }

    [Fact]
    public void Position_embeddings_are_weight_decayed_as_in_the_official_run_unless_named()
    {
        // Official (timm create_optimizer): only the exact names pos_embed and cls_token skip weight decay, so pos_embed_cls and
        // pos_embed_pat ARE decayed; the trainer's default names reproduce that. Naming them exempts them (the corrected setting).
        using var method = new MctFormerPlusMethod(Small());
        var parameters = ((ITrainable)method).TrainableParameters().ToList();
        var (decay, noDecay) = ParameterGroups.Split(parameters, new TrainerOptions().NoWeightDecayNames);
        Assert.Contains("pos_embed_cls", decay.Select(p => p.Name));
        Assert.Contains("pos_embed_pat", decay.Select(p => p.Name));
        Assert.Contains("cls_token", noDecay.Select(p => p.Name));
        Assert.DoesNotContain("pos_embed", parameters.Select(p => p.Name));
        var corrected = ParameterGroups.Split(parameters, [.. new TrainerOptions().NoWeightDecayNames, "pos_embed_cls", "pos_embed_pat"]);
        Assert.Contains("pos_embed_cls", corrected.NoDecay.Select(p => p.Name));
        Assert.Contains("pos_embed_pat", corrected.NoDecay.Select(p => p.Name));
    }

    [Fact]
    public void Registration_presets_and_validation()
    {
        var factory = MethodRegistry.Get(MctFormerPlusMethod.MethodName);
        Assert.Equal([LocalizationMapKind.Refined, LocalizationMapKind.Fused, LocalizationMapKind.ClassToPatch, LocalizationMapKind.PatchCam], factory.Maps.Supported);
        Assert.Equal(LocalizationMapKind.Refined, factory.Maps.DefaultFor(MethodPreset.Paper));
        Assert.Equal(LocalizationMapKind.Fused, factory.Maps.DefaultFor(MethodPreset.Cpu));
        Assert.Equal(LocalizationMapKind.PatchCam, LocalizationMapKindNames.Parse("patch-cam"));

        var paper = (MctFormerPlusConfig)factory.DefaultConfig(MethodPreset.Paper).WithNumClasses(20);
        Assert.Equal(448, paper.Backbone.ImageSize);
        Assert.Equal(12, paper.MapLayers);
        Assert.Equal(12, paper.ContrastLayers);
        Assert.Equal(0.996, paper.EffectiveGwrpDecay);
        Assert.True(paper.BackboneConfig.SeparatePositionEmbeddings);
        Assert.Equal(PositionEmbeddingResize.BicubicSize, paper.BackboneConfig.PositionEmbeddingResize);
        var cpu = (MctFormerPlusConfig)factory.DefaultConfig(MethodPreset.Cpu).WithNumClasses(5);
        Assert.Equal(12, cpu.Backbone.GridSize);
        Assert.Equal(VitStem.ResNet18Stride8, cpu.Backbone.Stem);                    // the frozen ImageNet ResNet-18 stem
        Assert.True(cpu.Backbone.FreezeStem);
        Assert.Equal(Math.Pow(0.996, 784.0 / 144), cpu.EffectiveGwrpDecay, 12);      // the paper's last weight on 12×12 patches
        Assert.Equal(Math.Pow(0.996, 783), Math.Pow(cpu.EffectiveGwrpDecay, 143), 2);

        var errors = factory.Validate(cpu with { CamLayers = 5, CctLayers = 0, GwrpDecay = 1.5 });
        Assert.Contains(errors, e => e.StartsWith("CamLayers must be in [1, Backbone.Depth = 4]", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("CctLayers must be in [1, Backbone.Depth = 4]", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("GwrpDecay must be in (0, 1]", StringComparison.Ordinal));
    }

    [Fact]
    public void Training_and_inference_do_not_leak_and_a_few_steps_lower_the_loss()
    {
        var leakConfig = new MctFormerPlusConfig { NumClasses = 2, Backbone = MctFormerPlusConfig.WithPatchResize(TinyModelChecks.LeakCheckBackbone) };
        using (var method = new MctFormerPlusMethod(leakConfig))
        {
            TinyModelChecks.AssertTrainingAndInferenceDoNotLeak(method.Model,
                (images, labels) => Backward(method, images, labels),
                image => ((IWsssMethod)method).Localize(image, [1, 2], new LocalizationOptions { Scales = [1.0, 0.5] }));
        }
        torch.manual_seed(3);
        using var learner = new MctFormerPlusMethod(Small(classes: 3));
        TinyModelChecks.AssertAFewStepsLowerTheLoss(learner.Model, 25, (images, labels) => Backward(learner, images, labels));
    }

    static Tensor Backward(MctFormerPlusMethod method, Tensor images, Tensor labels)
    {
        var terms = method.ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(0, 1, 1e-3, new Random(0)));
        terms.Total.backward();
        return terms.Total;
    }
}
