using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Methods;
using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Pipelines;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

/// <summary>Label-updating rounds of the pipeline (<c>--rounds N</c>), saliency folders of training, and their refusals.</summary>
[Collection("Torch")]
public class LabelRoundsTests
{
    /// <summary>A tiny AuxSegNet (the packaged ImageNet trunk, 8-wide branches, 32 px crops, 3 steps a round) up to the maps. Round 1 uses the online labels from its second step; rounds 2 and later train on the round labels from their first step.</summary>
    static WsssPipelineOptions TinyOptions(string data, string outDir, int rounds = 2) => PipelineTestData.TinyOptions(data, outDir) with
    {
        CamRecipe = TrainRecipe.Preset(AuxSegNetMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes)
            .With("model.branch_width=8").With("model.crop_size=32").With("model.label_start_step=1")
            .With("trainer.steps=3").With("trainer.batch_size=4").With("trainer.checkpoint_every=1").With("trainer.log_every=1"),
        Localization = new LocalizationOptions { Scales = [1.0], Flip = false },
        OracleThreshold = false,
        StopAfter = PipelineEnd.Cam,
        Rounds = rounds,
        Threads = 1,
    };

    static readonly string[] TwoRoundStages = ["cam-train", "round-1-eval", "round-1-labels", "round-2-train", "round-2-eval", "round-2-labels", "maps-refined", "cam-eval-refined"];

    static byte[] LabelsOf(string outDir, int round, string name) => LabelPng.Read(Path.Combine(LabelRounds.RoundDirectory(outDir, round), "labels", name + ".png")).Labels;

    [Fact]
    public void Two_rounds_make_new_labels_from_the_method_train_from_the_previous_weights_and_report_each_round()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var outDir = dir.File("out");
        var report = WsssPipeline.Run(TinyOptions(data, outDir));
        Assert.Equal(TwoRoundStages, report.Stages.Select(s => s.Name));
        var train = VocDataset.Open(data, "train");

        // round 1's labels are the method's update of round 1's model, with the estimated saliency (checked on one image)
        var sample = train.Samples[0];
        using (var round1 = (AuxSegNetMethod)TrainPipeline.LoadTrained(Path.Combine(outDir, "cam", "run"), out _))
        using (var scope = torch.NewDisposeScope())
        {
            round1.Model.eval();
            var image = ImageCodec.Load(sample.ImagePath);
            var (chw, h, w) = new EvalTransform().Apply(image);
            var multiHot = new float[PipelineTestData.Classes];
            foreach (var c in sample.Classes) multiHot[c - 1] = 1f;
            var (labels, saliency) = round1.NextRoundLabels(torch.tensor(chw, [1, 3, h, w]), torch.tensor(multiHot, [1, multiHot.Length]),
                torch.tensor(SaliencyMaps.Estimate(image.Pixels, h, w), [1, h, w]));
            Assert.Equal(labels, LabelsOf(outDir, 1, sample.Name));
            var written = SaliencyMaps.Read(Path.Combine(LabelRounds.RoundDirectory(outDir, 1), "saliency"), sample.Name, h, w);
            Assert.All(written.Zip(saliency), p => Assert.Equal(p.Second, p.First, 0.5 / 255 + 1e-6));
        }

        // round 2 started from round 1's weights and trained on its labels: its labels moved
        var round2Config = RunConfig.Load(Path.Combine(LabelRounds.RoundDirectory(outDir, 2), "run"));
        Assert.Equal(3, round2Config.Recipe.Trainer.Steps);
        long changed = train.Samples.Sum(s => LabelsOf(outDir, 1, s.Name).Zip(LabelsOf(outDir, 2, s.Name)).LongCount(p => p.First != p.Second));
        Assert.True(changed > 0, "round 2's labels equal round 1's");

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, WsssPipeline.ReportFile)))!;
        var rounds = json["rounds"]!.AsArray();
        Assert.Equal([1, 2], rounds.Select(r => r!["round"]!.GetValue<int>()));
        foreach (var r in rounds) Assert.InRange(r!["cam_miou"]!.GetValue<double>(), 0, 1);
        foreach (var r in rounds) Assert.InRange(r!["pseudo_miou"]!.GetValue<double>(), 0, 1);
        Assert.Equal(report.CamMeanIou, rounds[1]!["cam_miou"]!.GetValue<double>(), 12);      // the last round's maps feed the pipeline
        var scored = WeakSeg.Evaluation.SegmentationEvaluator.EvaluateDirectory(Path.Combine(LabelRounds.RoundDirectory(outDir, 2), "labels"), data, "train");
        Assert.Equal(scored.Metrics.MeanIou, rounds[1]!["pseudo_miou"]!.GetValue<double>(), 12);
        Assert.Equal((double)changed / train.Samples.Sum(s => LabelsOf(outDir, 2, s.Name).Length), rounds[1]!["changed_label_fraction"]!.GetValue<double>(), 12);
        Assert.Equal(2, json["run"]!["rounds"]!.GetValue<int>());

        // the same seed gives the same labels
        var again = dir.File("again");
        WsssPipeline.Run(TinyOptions(data, again));
        foreach (var s in train.Samples) Assert.Equal(LabelsOf(outDir, 2, s.Name), LabelsOf(again, 2, s.Name));
    }

    [Fact]
    public void An_interrupted_second_round_resumes_reusing_the_finished_round_stages()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var reference = dir.File("reference");
        WsssPipeline.Run(TinyOptions(data, reference));

        var outDir = dir.File("out");
        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            WsssPipeline.Run(TinyOptions(data, outDir), new WsssPipelineTests.CancelAtStep(cancel, "train auxsegnet (round 2)", 1), cancel.Token));
        Assert.False(File.Exists(Path.Combine(LabelRounds.RoundDirectory(outDir, 2), "run", "model-final.bin")));
        var resumed = WsssPipeline.Run(TinyOptions(data, outDir));
        Assert.Equal(TwoRoundStages, resumed.Stages.Select(s => s.Name));
        Assert.Equal(["cam-train", "round-1-eval", "round-1-labels"], resumed.Stages.Where(s => s.Reused).Select(s => s.Name));
        foreach (var s in VocDataset.Open(data, "train").Samples) Assert.Equal(LabelsOf(reference, 2, s.Name), LabelsOf(outDir, 2, s.Name));
    }

    [Fact]
    public void One_round_of_a_label_making_method_gives_its_own_labels_and_segmentation_and_a_retrained_segmenter_learns_from_them()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var outDir = dir.File("out");
        var options = TinyOptions(data, outDir, rounds: 1) with { StopAfter = PipelineEnd.Segmentation, UpperBound = false };
        var report = WsssPipeline.Run(options);
        // the method's labels (fusion of its CAM and saliency) are the pseudo labels: no thresholded-map stage, no retraining
        Assert.Equal(["cam-train", "round-1-eval", "round-1-labels", "maps-refined", "cam-eval-refined"], report.Stages.Select(s => s.Name));
        var json = JsonNode.Parse(File.ReadAllText(report.ReportPath))!;
        var round = json["rounds"]![0]!;
        Assert.Equal(round["pseudo_miou"]!.GetValue<double>(), report.PseudoMeanIou!.Value, 12);
        Assert.Equal(round["val_miou"]!.GetValue<double>(), report.ValMeanIou!.Value, 12);
        Assert.Equal([WsssPipeline.MethodDecoderName], report.ValMeanIouByDecoder.Keys);
        // pseudo_miou scores exactly the round's label files
        var scored = WeakSeg.Evaluation.SegmentationEvaluator.EvaluateDirectory(Path.Combine(LabelRounds.RoundDirectory(outDir, 1), "labels"), data, "train", null, null);
        Assert.Equal(scored.Metrics.MeanIou, report.PseudoMeanIou!.Value, 12);

        // --retrain-segmenter trains the generic segmenter on those labels; its stage record names them as its labels
        var retrained = WsssPipeline.Run(options with { RetrainSegmenter = true });
        Assert.Contains(retrained.Stages, s => s.Name == "seg-refined-gradclip-train" && !s.Reused);
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "stages", "seg-refined-gradclip-train.json")))!;
        Assert.Equal(1, record["settings"]!["labels"]!["round_labels"]!["round"]!.GetValue<int>());
        Assert.Equal(report.ValMeanIou, retrained.ValMeanIouByDecoder[WsssPipeline.MethodDecoderName]);
        Assert.True(retrained.ValMeanIouByDecoder.ContainsKey("gradclip"));
    }

    [Fact]
    public void A_round_without_any_mask_on_disk_still_updates_the_labels()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        Directory.Delete(Path.Combine(data, "SegmentationClass"), recursive: true);
        var outDir = dir.File("out");
        var report = WsssPipeline.Run(TinyOptions(data, outDir));
        Assert.Equal(["cam-train", "round-1-eval", "round-1-labels", "round-2-train", "round-2-eval", "round-2-labels", "maps-refined"],
            report.Stages.Select(s => s.Name));
        var samples = VocDataset.Open(data, "train").Samples;
        Assert.All(samples, s => Assert.True(File.Exists(Path.Combine(LabelRounds.RoundDirectory(outDir, 2), "labels", s.Name + ".png"))));
        Assert.True(samples.Sum(s => LabelsOf(outDir, 1, s.Name).Zip(LabelsOf(outDir, 2, s.Name)).Count(p => p.First != p.Second)) > 0);
        var rounds = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, WsssPipeline.ReportFile)))!["rounds"]!.AsArray();
        Assert.All(rounds, r => Assert.Null(r!["pseudo_miou"]));
    }

    [Fact]
    public void Round_counts_and_saliency_for_methods_without_them_are_refused_in_one_line()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var zero = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(TinyOptions(data, dir.File("zero"), rounds: 0)));
        Assert.Equal("--rounds must be at least 1 (got 0)", zero.Message);
        var mct = PipelineTestData.TinyOptions(data, dir.File("mct")) with { Rounds = 2 };
        var noRounds = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(mct));
        Assert.Equal($"method '{BuiltInMethods.WeakTr}' does not update its labels between rounds; --rounds 2 needs a method that does (use --rounds 1)", noRounds.Message);
        var noSaliency = Assert.Throws<WeakSegException>(() => WsssPipeline.Run(mct with { Rounds = 1, Saliency = new SaliencySource(dir.Path) }));
        Assert.Equal($"method '{BuiltInMethods.WeakTr}' does not take saliency maps; leave out --saliency", noSaliency.Message);
        Assert.All(new[] { "zero", "mct" }, d => Assert.False(Directory.Exists(dir.File(d))));
        Assert.DoesNotContain('\n', zero.Message + noRounds.Message + noSaliency.Message);
    }

    static TrainRequest TinyTrain(string data, string runDir, SaliencySource? saliency) => new()
    {
        DataRoot = data, RunDirectory = runDir, Saliency = saliency, Workers = 1,
        Recipe = TinyOptions(data, runDir).CamRecipe.For(PipelineTestData.Classes).With("trainer.steps=1").With("trainer.threads=1"),
    };

    /// <summary>The tiny data and the estimated saliency maps of its training images in dir/sal.</summary>
    static (string Data, string SalDir, IReadOnlyList<VocSample> Samples) DataWithSaliency(TempDir dir)
    {
        var data = PipelineTestData.MakeData(dir.File("data"));
        var samples = VocDataset.Open(data, "train").Samples;
        SaliencyMaps.WriteEstimated(samples, dir.File("sal"));
        return (data, dir.File("sal"), samples);
    }

    [Fact]
    public void A_saliency_folder_missing_a_map_or_with_a_wrong_size_is_one_error_naming_the_file_unless_computed()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, salDir, samples) = DataWithSaliency(dir);
        var missing = SaliencyMaps.PathOf(salDir, samples[3].Name);
        File.Delete(missing);
        var e = Assert.Throws<WeakSegException>(() => TrainPipeline.Run(TinyTrain(data, dir.File("run-error"), new SaliencySource(salDir))));
        Assert.StartsWith(missing, e.Message);
        Assert.Contains("not found", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("run-error"), "config.json")));     // refused before the run is written

        var outcome = TrainPipeline.Run(TinyTrain(data, dir.File("run-compute"), new SaliencySource(salDir, SaliencyMissing.Compute)));
        Assert.True(outcome.Result.Completed);

        SaliencyMaps.Write(missing, new float[16 * 16], 16, 16);
        var wrong = Assert.Throws<WeakSegException>(() => TrainPipeline.Run(TinyTrain(data, dir.File("run-size"), new SaliencySource(salDir, SaliencyMissing.Compute))));
        Assert.StartsWith(missing, wrong.Message);
        Assert.Contains("saliency map is 16×16, but image", wrong.Message);
        var noDir = Assert.Throws<WeakSegException>(() => TrainPipeline.Run(TinyTrain(data, dir.File("run-nodir"), new SaliencySource(dir.File("nowhere")))));
        Assert.Equal(dir.File("nowhere") + ": saliency folder not found", noDir.Message);
    }

    [Fact]
    public void Batches_carry_the_saliency_maps_cropped_with_the_images()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, salDir, samples) = DataWithSaliency(dir);
        var source = new SaliencySource(salDir);
        var loader = new BatchLoader(samples, PipelineTestData.Classes, TrainTransform.None(32), 4, seed: 1, shuffle: false, workers: 1, loadMasks: false,
            saliency: source.Plane);
        var batch = loader.BuildBatch(0);
        for (int j = 0; j < batch.Count; j++)
        {
            var image = ImageCodec.Load(samples[batch.Indices[j]].ImagePath);
            var expected = SaliencyMaps.ToPlane(source.Map(samples[batch.Indices[j]].Name, image));
            Assert.Equal(expected, batch.Saliency!.AsSpan(j * 32 * 32, 32 * 32).ToArray());
        }
        using var scope = torch.NewDisposeScope();
        var planes = new byte[] { 0, 127, 254, SaliencyMaps.Outside };
        var decoded = new ImageBatch { Images = new float[12], Saliency = planes, Labels = new float[1], Names = ["a"], Indices = [0], Count = 1, Height = 2, Width = 2, NumClasses = 1 };
        Assert.Equal(new[] { 0f, 0.5f, 1f, 0f }, decoded.SaliencyToTensor(torch.CPU).data<float>().ToArray());
    }
}
