using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Methods.Fsr;
using WeakSeg.Methods.MoRe;
using WeakSeg.Methods.ToCo;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Pipelines;

/// <summary>
/// Single-stage methods in `train` and `pipeline`: the method's own trainer schedule (a configuration capability) and the val
/// predictions of its own decoder (a registration capability), with the pipeline's stage ledger.
/// </summary>
[Collection("Torch")]
public class SingleStagePipelineTests
{
    static JsonNode Json(TrainerOptions options) => JsonSerializer.SerializeToNode(options, WeakSeg.IO.WeakSegJson.TypeInfo<TrainerOptions>())!;

    /// <summary>The generic cpu preset trainer, as the recipe has always built it.</summary>
    static TrainerOptions GenericCpu => new()
    {
        Steps = 500, BatchSize = 32, BaseLr = 1e-3, MinLr = 1e-5, WarmupStartLr = 1e-6, WarmupSteps = 30, CheckpointEvery = 100, LogEvery = 10,
    };

    [Theory]
    [InlineData(BuiltInMethods.MctFormerV1)]
    [InlineData(BuiltInMethods.MctFormerV2)]
    [InlineData(BuiltInMethods.WeakTr)]
    [InlineData(BuiltInMethods.VitCls)]
    [InlineData(BuiltInMethods.Cam)]
    public void A_method_without_a_schedule_keeps_the_generic_trainer_unchanged(string method)
    {
        Assert.True(JsonNode.DeepEquals(Json(GenericCpu), Json(TrainRecipe.Preset(method, MethodPreset.Cpu).For(20).Trainer)));
        Assert.True(JsonNode.DeepEquals(Json(new TrainerOptions()), Json(TrainRecipe.Preset(method, MethodPreset.Paper).For(20).Trainer)));
        Assert.False(TrainRecipe.Preset(method, MethodPreset.Cpu).For(20).HasMethodSchedule);
        Assert.False(MethodRegistry.Get(method).HasSegmentationDecoder);
    }

    [Fact]
    public void A_method_with_a_schedule_starts_from_it_in_each_preset()
    {
        var cpu = TrainRecipe.Preset(ToCoMethod.MethodName, MethodPreset.Cpu).For(20);
        Assert.True(cpu.HasMethodSchedule);
        var t = cpu.Trainer;
        Assert.Equal(1500, t.Steps);                                     // ToCoConfig.Cpu
        Assert.Equal(8, t.BatchSize);
        Assert.Equal(2e-4, t.BaseLr);
        Assert.Equal(2e-4 * 1e-6, t.WarmupStartLr, 15);
        Assert.Equal(100, t.WarmupSteps);
        Assert.Equal(0.0, t.MinLr);
        Assert.Equal(ScheduleKind.PolyFromStart, t.Schedule);
        Assert.Equal(0.9, t.PolyPower);
        Assert.Equal(OptimizerKind.AdamW, t.Optimizer);
        Assert.True(t.DecayAllParameters);
        Assert.Equal(100, t.CheckpointEvery);                            // the generic cadence stays
        Assert.Equal(10, t.LogEvery);
        Assert.True(JsonNode.DeepEquals(Json(ToCoConfig.Cpu.WithNumClasses(20).ToTrainerOptions(GenericCpu)), Json(t)));

        var paper = TrainRecipe.Preset(ToCoMethod.MethodName, MethodPreset.Paper).For(20).Trainer;
        Assert.Equal(20_000, paper.Steps);
        Assert.Equal(4, paper.BatchSize);
        Assert.Equal(6e-5, paper.BaseLr);
        Assert.Equal(1500, paper.WarmupSteps);

        Assert.True(JsonNode.DeepEquals(Json(MoReConfig.Cpu.WithNumClasses(20).ToTrainerOptions(GenericCpu)),
            Json(TrainRecipe.Preset(MoReMethod.MethodName, MethodPreset.Cpu).For(20).Trainer)));
        var fsr = TrainRecipe.Preset(FsrMethod.MethodName, MethodPreset.Cpu).For(20).Trainer;
        Assert.Equal(ScheduleKind.WarmupCosine, fsr.Schedule);           // FSR's own (cosine) schedule, not ToCo's
        Assert.Equal(["pos_embed", "cls_token", "mask_token"], fsr.NoWeightDecayNames);
        foreach (var name in new[] { ToCoMethod.MethodName, MoReMethod.MethodName, FsrMethod.MethodName })
            Assert.True(MethodRegistry.Get(name).HasSegmentationDecoder);
    }

    [Fact]
    public void User_settings_win_over_the_methods_schedule_and_model_fields_move_it()
    {
        var preset = TrainRecipe.Preset(ToCoMethod.MethodName, MethodPreset.Cpu).For(20);
        // a trainer field set by the user wins; the other schedule fields stay the method's
        var steps = preset.With("trainer.steps=7");
        Assert.Equal(7, steps.Trainer.Steps);
        Assert.Equal(ScheduleKind.PolyFromStart, steps.Trainer.Schedule);
        Assert.Equal(8, steps.Trainer.BatchSize);
        // a model field of the schedule moves the trainer field it derives
        var modelSteps = preset.With("model.steps=40");
        Assert.Equal(40, modelSteps.Trainer.Steps);
        Assert.Equal(40, modelSteps.Trainer.WarmupSteps);                // min(warm-up 100, steps 40)
        var rate = preset.With("model.learning_rate=0.001");
        Assert.Equal(1e-3, rate.Trainer.BaseLr);
        Assert.Equal(1e-9, rate.Trainer.WarmupStartLr, 15);
        // ... but never one the user set before or in the same overlay
        var both = preset.With("trainer.steps=7").With("model.steps=40");
        Assert.Equal(7, both.Trainer.Steps);
        Assert.Equal(40, both.Trainer.WarmupSteps);
        var file = preset.Overlay(new JsonObject { ["model"] = new JsonObject { ["steps"] = 40 }, ["trainer"] = new JsonObject { ["steps"] = 9, ["base_lr"] = 0.5 } }, "<test>");
        Assert.Equal(9, file.Trainer.Steps);
        Assert.Equal(0.5, file.Trainer.BaseLr);
        Assert.Equal(40, file.Trainer.WarmupSteps);
        // a model overlay of a method without a schedule leaves its trainer alone
        var mct = TrainRecipe.Preset(BuiltInMethods.MctFormerV2, MethodPreset.Cpu).For(20).With("model.cam_layers=2");
        Assert.True(JsonNode.DeepEquals(Json(GenericCpu), Json(mct.Trainer)));
        // an invalid model is reported by validation, naming the field, not by the schedule
        var bad = preset.With("model.steps=0");
        Assert.Contains(bad.Validate(), e => e.Contains("model.Steps must be ≥ 1"));
    }

    /// <summary>A tiny ToCo (32 px, 2 blocks, segmentation from step 1 so the decoder trains) with the tiny segmenter.</summary>
    static WsssPipelineOptions TinyOptions(string data, string outDir)
    {
        var generic = PipelineTestData.TinyOptions(data, outDir);
        return generic with
        {
            CamRecipe = TrainRecipe.Preset(ToCoMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes)
                .With("model.backbone={\"image_size\": 32, \"patch_size\": 8, \"embed_dim\": 16, \"depth\": 2, \"num_heads\": 2}")
                .With("model.crop_size=32").With("model.decoder_width=8").With("model.segmentation={\"weight\": 0.1, \"start_step\": 1}")
                .With("trainer.steps=3").With("trainer.warmup_steps=1").With("trainer.batch_size=4").With("trainer.checkpoint_every=2").With("trainer.log_every=1"),
            Segmentation = generic.Segmentation with { Steps = 2 },
            OracleThreshold = false,
        };
    }

    static readonly string[] SingleStageStages = ["cam-train", "maps-fused", "cam-eval-fused", "pseudo-fused", "decoder-val", "upper-bound-train", "upper-bound-val"];

    [Fact]
    public void Single_stage_pipeline_scores_val_with_the_methods_own_decoder()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var outDir = dir.File("out");
        var report = WsssPipeline.Run(TinyOptions(data, outDir));

        Assert.Equal(SingleStageStages, report.Stages.Select(s => s.Name));     // no segmenter retrained on the pseudo labels
        Assert.False(Directory.Exists(Path.Combine(outDir, "seg", "fused-gradclip")));
        var predDir = Path.Combine(outDir, "decoder", "val-pred");
        Assert.Equal(SegmentationEvaluator.EvaluateDirectory(predDir, data, "val").Metrics.MeanIou, report.ValMeanIou);
        Assert.Equal(report.ValMeanIou, report.ValMeanIouByDecoder[WsssPipeline.MethodDecoderName]);
        Assert.Equal(report.ValMeanIou!.Value / report.UpperBoundMeanIou!.Value, report.WeakFullRatio!.Value, 12);

        // The predictions are the trained network's decoder by ToCo's inference: scales 1, 1.5, 1.25, view + flip summed, max, softmax, argmax.
        using (var trained = TrainPipeline.LoadTrained(Path.Combine(outDir, "cam", "run"), out _))
        {
            var network = ((ToCoMethod)trained).Network;
            network.eval();
            var valSet = VocDataset.Open(data, "val");
            foreach (var sample in valSet.Samples)
            {
                using var scope = torch.NewDisposeScope();
                var image = ImageCodec.Load(sample.ImagePath);
                var (chw, h, w) = new EvalTransform().Apply(image);
                var x = torch.tensor(chw, [1, 3, h, w]);
                torch.Tensor? best = null;
                using (torch.no_grad())
                    foreach (var s in new[] { 1.0, 1.5, 1.25 })
                    {
                        var scaled = s == 1.0 ? x : torch.nn.functional.interpolate(x, size: [(long)(s * h), (long)(s * w)], mode: torch.InterpolationMode.Bilinear, align_corners: false);
                        var up = (torch.Tensor t) => torch.nn.functional.interpolate(t, size: [h, w], mode: torch.InterpolationMode.Bilinear, align_corners: false);
                        var logits = up(network.forward(scaled).Segmentation).add(up(network.forward(scaled.flip(-1)).Segmentation).flip(-1));
                        best = best is null ? logits : torch.maximum(best, logits);
                    }
                var expected = best!.softmax(1).argmax(1).flatten().to_type(torch.ScalarType.Byte).data<byte>().ToArray();
                var written = LabelPng.Read(Path.Combine(predDir, sample.Name + ".png")).Labels;
                Assert.Equal(expected.Length, written.Length);
                Assert.True(expected.Zip(written).Count(p => p.First != p.Second) <= expected.Length / 100, $"{sample.Name}: predictions differ from the decoder's");
            }
        }

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, WsssPipeline.ReportFile)))!;
        foreach (var key in new[] { "cam_miou", "pseudo_miou", "val_miou", "upper_bound_miou", "weak_full_ratio", "seconds" })
            Assert.NotNull(json[key]);
        Assert.Equal(report.ValMeanIou!.Value, json["val_miou_by_decoder"]!["method"]!.GetValue<double>());
        // the effective trainer options: the method's schedule with the test's settings laid over it
        Assert.Equal("method schedule", json["run"]!["trainer_defaults"]!.GetValue<string>());
        Assert.Equal("PolyFromStart", json["run"]!["trainer"]!["schedule"]!.GetValue<string>());
        Assert.Equal(3, json["run"]!["trainer"]!["steps"]!.GetValue<long>());
        Assert.Equal(2e-4, json["run"]!["trainer"]!["base_lr"]!.GetValue<double>());
        Assert.Equal("PolyFromStart", RunConfig.Load(Path.Combine(outDir, "cam", "run")).Recipe.Trainer.Schedule.ToString());

        // Retraining a segmenter on the pseudo labels is an option: it reuses every stage, and val_miou stays the method's decoder.
        var retrained = WsssPipeline.Run(TinyOptions(data, outDir) with { RetrainSegmenter = true, UpperBound = false });
        Assert.Contains("seg-fused-gradclip-val", retrained.Stages.Select(s => s.Name));
        Assert.All(retrained.Stages.Where(s => !s.Name.StartsWith("seg-", StringComparison.Ordinal)), s => Assert.True(s.Reused, s.Name));
        Assert.Equal(report.ValMeanIou, retrained.ValMeanIou);
        Assert.Equal(["method", "gradclip"], retrained.ValMeanIouByDecoder.Keys);
    }

    [Fact]
    public void An_interrupted_decoder_stage_resumes_and_ends_with_the_same_numbers()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var reference = WsssPipeline.Run(TinyOptions(data, dir.File("reference")) with { UpperBound = false });

        var outDir = dir.File("out");
        var options = TinyOptions(data, outDir) with { UpperBound = false };
        using (var cancel = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() =>
                WsssPipeline.Run(options, new WsssPipelineTests.CancelAtStep(cancel, "predict val (the method's decoder)", 1), cancel.Token));
        var ledger = new StageLedger(Path.Combine(outDir, "stages"));
        Assert.Contains("\"running\"", File.ReadAllText(ledger.PathOf("decoder-val")));
        var predDir = Path.Combine(outDir, "decoder", "val-pred");
        var first = Directory.GetFiles(predDir, "*.png").Single();                 // one of the two val images was written
        var firstWritten = File.GetLastWriteTimeUtc(first);

        var resumed = WsssPipeline.Run(options);
        Assert.Equal(SingleStageStages[..5], resumed.Stages.Select(s => s.Name));
        Assert.Equal(SingleStageStages[..4], resumed.Stages.Where(s => s.Reused).Select(s => s.Name));
        Assert.Equal(firstWritten, File.GetLastWriteTimeUtc(first));                  // the written prediction is kept, not redone
        Assert.Equal(2, Directory.GetFiles(predDir, "*.png").Length);
        Assert.Equal(reference.ValMeanIou, resumed.ValMeanIou);
        Assert.Equal(reference.PseudoMeanIou, resumed.PseudoMeanIou);
        Assert.Equal(reference.CamMeanIou, resumed.CamMeanIou);

        var again = WsssPipeline.Run(options);
        Assert.All(again.Stages, s => Assert.True(s.Reused, s.Name));
        Assert.Equal(reference.ValMeanIou, again.ValMeanIou);

        // other decoder settings (CRF) meet the recorded stage: refused, naming the record
        var e = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(options with { Crf = true }));
        Assert.Contains("decoder-val", e.Message);
    }
}
