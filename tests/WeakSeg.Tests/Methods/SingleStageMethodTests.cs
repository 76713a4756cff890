using System.Text.Json;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Methods.MoRe;
using WeakSeg.Methods.ToCo;
using WeakSeg.Pipelines;
using WeakSeg.Refinement.Par;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

/// <summary>ToCo and MoRe through the method door: registry, generic training, run folder, maps, config JSON.</summary>
[Collection("Torch")]
public class SingleStageMethodTests
{
    /// <summary>MoRe's uncertain-relation loss needs a patch grid larger than 6×6: 64 px crops for it, 32 px for ToCo.</summary>
    static int TinySize(string method) => method == MoReMethod.MethodName ? 64 : 32;

    static TrainRecipe TinyRecipe(string method) => TrainRecipe.Preset(method, MethodPreset.Cpu).For(PipelineTestData.Classes)
        .With($"model.backbone={{\"image_size\": {TinySize(method)}, \"patch_size\": 8, \"embed_dim\": 16, \"depth\": 2, \"num_heads\": 2}}")
        .With($"model.crop_size={TinySize(method)}").With("model.decoder_width=8")
        .With("model.segmentation={\"weight\": 0.1, \"start_step\": 1}")
        .With("trainer.steps=2").With("trainer.batch_size=4").With("trainer.warmup_steps=1").With("trainer.threads=2");

    [Theory]
    [InlineData(ToCoMethod.MethodName)]
    [InlineData(MoReMethod.MethodName)]
    public void Trains_through_the_generic_path_and_writes_the_methods_multi_scale_cam(string method)
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var run = dir.File("run");
        var outcome = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = TinyRecipe(method) });
        Assert.True(outcome.Result.Completed);
        Assert.Equal(2, outcome.Result.Step);
        Assert.True(double.IsFinite(outcome.Result.LastLoss));

        var maps = dir.File("maps");
        var scales = new[] { 1.0, 0.5 };
        var summary = CamPipeline.Run(new CamRequest
        {
            RunDirectory = run, OutDirectory = maps, Localization = new LocalizationOptions { MapKind = LocalizationMapKind.Fused, Scales = scales }, Threads = 2,
        });
        Assert.Equal(8, summary.Written);

        // The written maps are the method's own protocol (max of view and flip, summed over scales, min-max), selected classes.
        var dataset = WeakSeg.Data.VocDataset.Open(data, "train");
        var sample = dataset.Samples[0];
        var written = CamMapFile.Read(maps, sample.Name);
        Assert.Equal(sample.Classes, written.Classes);
        using var loaded = TrainPipeline.LoadTrained(run, out var config);
        Assert.Equal(method, loaded.Name);
        loaded.Model.eval();
        using var scope = torch.NewDisposeScope();
        var (chw, h, w) = new EvalTransform().Apply(dataset.LoadImage(0));
        var image = torch.tensor(chw, [3, h, w]);
        var full = method == ToCoMethod.MethodName
            ? ToCoMaps.MultiScaleCam(((ToCoMethod)loaded).Network, image.unsqueeze(0), scales).Cam
            : MoReMaps.MultiScaleCam(((MoReMethod)loaded).Network, image.unsqueeze(0), scales).Cam;
        var expected = full[0].index_select(0, torch.tensor(sample.Classes.Select(c => (long)(c - 1)).ToArray())).contiguous().data<float>().ToArray();
        Assert.Equal(expected.Length, written.Maps.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], written.Maps[i], 1e-3f);
        Assert.All(written.Maps, v => Assert.InRange(v, 0f, 1f));

        var e = Assert.Throws<WeakSegException>(() => CamPipeline.Run(new CamRequest
        {
            RunDirectory = run, OutDirectory = dir.File("refined"), Localization = new LocalizationOptions { MapKind = LocalizationMapKind.Refined },
        }));
        Assert.Contains(method == MoReMethod.MethodName ? "has no refined map (it has: fused, lam)" : "has no refined map (it has: fused)", e.Message);
    }

    [Fact]
    public void The_toco_door_computes_ToCoTraining_Loss_with_the_steps_weights()
    {
        var config = ToCoConfig.Cpu with
        {
            NumClasses = 3, Backbone = ToCoConfig.Cpu.Backbone with { ImageSize = 32, EmbedDim = 16, Depth = 2, NumHeads = 2 },
            CropSize = 32, DecoderWidth = 8, Segmentation = new LossWeight(0.1, 1),
        };
        torch.manual_seed(3);
        using var method = (ToCoMethod)MethodRegistry.Get(ToCoMethod.MethodName).Create(config);
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 32, 32);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
        var par = new PixelAdaptiveRefinement(config.Par);
        foreach (long step in new long[] { 0, 1 })
        {
            var door = ((IWsssMethod)method).ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(step, 2, 1e-3, new Random(0)));
            var direct = ToCoTraining.Loss(method.Network, par, images, labels, step, new Random(0));
            Assert.Equal(direct.Total.item<float>(), door.Total.item<float>(), 1e-5f);
            Assert.Equal(direct.Parts.Select(p => p.Name), door.Parts.Select(p => p.Name));
            Assert.Equal(step == 0 ? 3 : 5, door.Parts.Count);         // cls, cls_aux, ptc (+ seg, seg_skipped from step 1)
        }
        Assert.Equal(10.0, ((IWsssMethod)method).LearningRateScale("decoder.classifier.weight"));
        Assert.Equal(1.0, ((IWsssMethod)method).LearningRateScale("encoder.blocks.0.attn.qkv.weight"));
    }

    [Fact]
    public void The_more_door_computes_MoReTraining_Loss_with_the_steps_random()
    {
        var config = MoReConfig.Cpu with
        {
            NumClasses = 3, Backbone = MoReConfig.Cpu.Backbone with { ImageSize = 64, EmbedDim = 16, Depth = 2, NumHeads = 2 },
            CropSize = 64, DecoderWidth = 8,
        };
        torch.manual_seed(4);
        using var method = (MoReMethod)MethodRegistry.Get(MoReMethod.MethodName).Create(config);
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 3, 64, 64);
        var labels = torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3);
        var door = ((IWsssMethod)method).ComputeLoss(new TrainBatch(images, labels), new TrainStepContext(0, 2, 1e-3, new Random(7)));
        var direct = MoReTraining.Loss(method.Network, new PixelAdaptiveRefinement(config.Par), images, labels, 0, new Random(7));
        Assert.Equal(direct.Total.item<float>(), door.Total.item<float>(), 1e-5f);
        Assert.Equal(direct.Parts.Select(p => p.Name), door.Parts.Select(p => p.Name));
        Assert.Equal(10.0, ((IWsssMethod)method).LearningRateScale("graph_layer.x"));
    }

    [Theory]
    [InlineData(ToCoMethod.MethodName)]
    [InlineData(MoReMethod.MethodName)]
    public void Config_round_trips_through_the_method_json(string method)
    {
        var factory = MethodRegistry.Get(method);
        IMethodConfig config = method == ToCoMethod.MethodName
            ? ToCoConfig.Paper with { CamScales = [1.0, 0.75], Segmentation = new LossWeight(0.3, 42) }
            : MoReConfig.Paper with { LateRelationThresholds = (0.55, 0.3), EarlyConfidentThresholds = new ThresholdPair(0.45, 0.2), UncertainTokens = 5 };
        var json = factory.ConfigToJson(config).ToJsonString();
        var back = factory.ConfigFromJson(System.Text.Json.Nodes.JsonNode.Parse(json)!, "test.json");
        Assert.Equal(json, factory.ConfigToJson(back).ToJsonString());
        if (back is MoReConfig more)
        {
            Assert.Equal(new ThresholdPair(0.55, 0.3), more.LateRelationThresholds);
            Assert.Contains("\"late_relation_thresholds\":{\"high\":0.55,\"low\":0.3}", json);
        }
        else
        {
            var toco = Assert.IsType<ToCoConfig>(back);
            Assert.Equal([1.0, 0.75], toco.CamScales);
            Assert.Equal(new LossWeight(0.3, 42), toco.Segmentation);
        }
        var e = Assert.Throws<WeakSegException>(() => factory.ConfigFromJson(System.Text.Json.Nodes.JsonNode.Parse("{\"no_such_field\": 1}")!, "bad.json"));
        Assert.Contains("bad.json", e.Message);
    }
}
