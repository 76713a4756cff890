using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods;
using WeakSeg.Methods.Baselines;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Pipelines;

[Collection("Torch")]
public class TrainPipelineTests
{
    [Theory]
    [InlineData(BuiltInMethods.MctFormerV2)]
    [InlineData("mctformer-plus")]
    public void Interrupted_and_resumed_run_equals_an_uninterrupted_run(string methodName)
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var recipe = PipelineTestData.TinyRecipe(methodName, steps: 4);      // 8 images / batch 4 → 2 steps per epoch: the resume crosses an epoch

        var (full, second) = TrainedRuns.UninterruptedAndResumed(dir, data, recipe, stopAfter: 2);
        Assert.Equal(full.Result.LastLoss, second.Result.LastLoss);

        var a = TrainedRuns.Weights(dir.File("full"));
        var b = TrainedRuns.Weights(dir.File("split"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (key, values) in a) Assert.True(values.SequenceEqual(b[key]), $"weights '{key}' differ after resume");
        // Training changed the weights (the comparison is not between two untouched initialisations).
        using var fresh = recipe.Factory.Create(recipe.ModelConfig);
        Assert.False(fresh.Model.state_dict()["head.weight"].data<float>().ToArray().SequenceEqual(a["head.weight"]));

        // Resuming with another model configuration is refused, naming config.json.
        var other = recipe.Overlay(new System.Text.Json.Nodes.JsonObject { ["model"] = new System.Text.Json.Nodes.JsonObject { ["cam_layers"] = 1 } }, "<test>");
        var e = Assert.Throws<WeakSegException>(() => TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = dir.File("split"), Recipe = other, Resume = true }));
        Assert.Contains(Path.Combine(dir.File("split"), "config.json"), e.Message);
        Assert.Contains("'model'", e.Message);
    }

    [Fact]
    public void Init_loads_timm_weights_and_reports_the_keys()
    {
        using var dir = TestPaths.NewTempDir();
        // A timm-style plain ViT (one class token) with the tiny backbone, written as safetensors.
        torch.manual_seed(7);
        using var vit = new VisionTransformer(PipelineTestData.TinyBackbone);
        var state = vit.state_dict();
        var path = dir.File("vit.safetensors");
        SafetensorsFile.Write(path, state.ToDictionary(kv => "module." + kv.Key, kv => kv.Value));   // wrapper prefix is stripped

        var recipe = PipelineTestData.TinyRecipe();
        using var method = recipe.Factory.Create(recipe.ModelConfig);
        var report = method.ImportTimmWeights(path);
        var model = method.Model.state_dict();
        foreach (var key in new[] { "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "patch_embed.proj.weight", "norm.weight" })
        {
            Assert.Contains(key, report.Loaded);
            Assert.True(state[key].data<float>().ToArray().SequenceEqual(model[key].data<float>().ToArray()), key);
        }
        Assert.Equal(state.Count - 2, report.Loaded.Count);                                     // all but cls_token, pos_embed
        Assert.Equal(new[] { "cls_token", "pos_embed" }, report.Skipped.Select(s => s.Key).Order());
        Assert.Equal(new[] { "head.bias", "head.weight" }, report.Missing.Order());             // the V2 PatchCAM head
        Assert.Empty(report.Unexpected);
    }

    [Fact]
    public void Generic_localization_selects_one_based_classes_of_the_accumulated_maps_and_normalises_them()
    {
        torch.manual_seed(3);
        using var method = new MctFormerMethod(PipelineTestData.TinyMctConfig(WeakSeg.Methods.MctFormer.MctFormerVariant.V2));
        using var scope = torch.NewDisposeScope();
        var image = torch.randn(3, 40, 32);
        var options = new LocalizationOptions { Scales = [1.0, 0.5, 1.5], Flip = true, MapKind = LocalizationMapKind.Refined };
        var generic = ((IWsssMethod)method).Localize(image, [3, 1], options);                                  // classes 3 then 1 (1-based)
        var accumulated = MultiScaleLocalization.AccumulatedMaps(method, image, options).clamp_min(0);         // [K, 40, 32]
        Assert.Equal(new long[] { 2, 40, 32 }, generic.shape);
        TensorAssert.Close(accumulated[2] / accumulated[2].max(), generic[0], 1e-5, "class 3 = map 2");
        TensorAssert.Close(accumulated[0] / accumulated[0].max(), generic[1], 1e-5, "class 1 = map 0");
        Assert.Equal(1f, generic.amax(new long[] { 1, 2 })[0].item<float>(), 5);
        Assert.Contains("class 4 is outside 1..3", Assert.Throws<WeakSegException>(() => ((IWsssMethod)method).Localize(image, [4], options)).Message);
    }

    [Fact]
    public void Baseline_maps_refine_with_their_own_attention()
    {
        torch.manual_seed(5);
        var config = new WeakSeg.Methods.Baselines.CamBaselineConfig { NumClasses = 3, Backbone = PipelineTestData.TinyBackbone };
        using var method = new CamMethod(config);
        var model = (WeakSeg.Methods.Baselines.CamBaselineModel)method.Model;
        method.Model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = torch.randn(1, 3, 32, 24);
        var output = model.Forward(images);
        var raw = output.Cams.relu();                                                           // [1, 3, 4, 3]
        TensorAssert.Close(raw, method.PatchGridMaps(images, LocalizationMapKind.Fused), 0, "fused = ReLU(CAM)");
        // Refined by brute force: affinity[i, j] = Σ_layers mean_heads A[1 + i, 1 + j]; refined[c, i] = Σ_j affinity[i, j] raw[c, j].
        var a = torch.stack(output.Backbone.Attentions, 0).mean(new long[] { 2 }).sum(dim: 0)[0];    // [T, T]
        var rawFlat = raw[0].reshape(3, 12).data<float>().ToArray();
        var aff = a.data<float>().ToArray();
        var expected = new float[36];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 12; i++)
            {
                double s = 0;
                for (int j = 0; j < 12; j++) s += aff[(1 + i) * 13 + 1 + j] * rawFlat[c * 12 + j];
                expected[c * 12 + i] = (float)s;
            }
        TensorAssert.Close(torch.tensor(expected).reshape(1, 3, 4, 3), method.PatchGridMaps(images, LocalizationMapKind.Refined), 1e-4, "refined");
        Assert.Throws<WeakSegException>(() => method.PatchGridMaps(images, LocalizationMapKind.ClassToPatch));
    }
}
