using System.Text.Json.Nodes;
using WeakSeg.Evaluation;
using WeakSeg.Interop;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>Outputs of other settings are never reported as done; bad class indices never reach a label PNG; report.json keeps the
/// provenance of the runs that computed its numbers.</summary>
[Collection("Torch")]
public class StaleOutputTests
{
    static (string Data, string Run) TrainedRun(TempDir dir)
    {
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var run = dir.File("run");
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
        Assert.True(train.Code == 0, train.Err);
        return (data, run);
    }

    static string ErrorLine(string stderr) => Assert.Single(stderr.Trim().Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));

    [Fact]
    public void Pseudo_refuses_a_class_index_outside_the_dataset_and_writes_nothing()
    {
        using var dir = TestPaths.NewTempDir();
        var (_, run) = TrainedRun(dir);
        var cams = dir.File("cams");
        Assert.Equal(0, CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "class-to-patch").Code);
        Assert.Equal(3, OutputSettings.Read(cams)!["num_classes"]!.GetValue<int>());
        var classes = CamMapFile.ClassesPath(cams, "train_000003");
        var listed = Npy.Read(classes).ToInt64();
        listed[^1] = 99;                                                                // as in the probe: class 99 of a 3-class dataset
        Npy.Write(classes, NpyArray.FromInt64(listed, [listed.Length]));

        var pseudo = CliRunner.Run("pseudo", "--cams", cams, "--out", dir.File("labels"), "--threshold", "0.3");
        Assert.Equal(1, pseudo.Code);
        Assert.Equal($"error: {classes}: class index 99 is outside the foreground classes 1..3 of the maps' dataset", ErrorLine(pseudo.Err));
        Assert.False(Directory.Exists(dir.File("labels")) && Directory.EnumerateFiles(dir.File("labels"), "*.png").Any());
    }

    [Fact]
    public void Cam_and_pseudo_refuse_a_folder_holding_outputs_of_other_settings()
    {
        using var dir = TestPaths.NewTempDir();
        var (_, run) = TrainedRun(dir);
        var cams = dir.File("cams");
        Assert.Equal(0, CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "class-to-patch").Code);
        // The same settings resume (every pair skipped); another map kind is refused, naming the record and the key.
        Assert.Contains("wrote maps of 0 images", CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "class-to-patch").Out);
        var other = CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "refined");
        Assert.Equal(1, other.Code);
        Assert.Equal($"error: {OutputSettings.PathIn(cams)}: this folder holds maps computed with other settings (map); use a new --out, or delete the folder to recompute",
            ErrorLine(other.Err));
        // Maps of a retrained run (same folder, new weights) are a change too.
        var weights = Path.Combine(run, "model-final.bin");
        var bytes = File.ReadAllBytes(weights);
        File.Delete(weights);
        var fromCheckpoint = CliRunner.Run("cam", "--run", run, "--out", cams, "--scales", "1", "--map", "class-to-patch");
        Assert.Contains("maps computed with other settings (weights", ErrorLine(fromCheckpoint.Err));
        File.WriteAllBytes(weights, bytes);

        var labels = dir.File("labels");
        Assert.Equal(0, CliRunner.Run("pseudo", "--cams", cams, "--out", labels, "--threshold", "0.3").Code);
        var stale = CliRunner.Run("pseudo", "--cams", cams, "--out", labels, "--threshold", "0.9");
        Assert.Equal(1, stale.Code);
        Assert.Contains("pseudo labels computed with other settings (threshold)", ErrorLine(stale.Err));
        // --overwrite rewrites every label, so it takes the folder over.
        var rewritten = CliRunner.Run("pseudo", "--cams", cams, "--out", labels, "--threshold", "0.9", "--overwrite");
        Assert.True(rewritten.Code == 0, rewritten.Err);
        Assert.Contains("wrote 8 labels", rewritten.Out);
        Assert.Equal(0.9f, OutputSettings.Read(labels)!["threshold"]!.GetValue<float>());

        // A folder of outputs written with no record (an older version, or by hand) is not trusted either.
        var unrecorded = dir.File("unrecorded");
        Directory.CreateDirectory(unrecorded);
        foreach (var f in Directory.GetFiles(cams, "train_00000*")) File.Copy(f, Path.Combine(unrecorded, Path.GetFileName(f)));
        var refused = CliRunner.Run("cam", "--run", run, "--out", unrecorded, "--scales", "1", "--map", "class-to-patch");
        Assert.Contains("holds 8 maps with no record of the settings", ErrorLine(refused.Err));
    }

    [Fact]
    public void Report_keeps_the_threads_that_computed_reused_stages()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = new WsssPipelineOptions
        {
            OutDirectory = dir.File("out"), DataRoot = data, CamRecipe = PipelineTestData.TinyRecipe(steps: 2),
            Localization = new LocalizationOptions { Scales = [1.0], Flip = false }, StopAfter = PipelineEnd.Cam, Seed = 3, Threads = 1, Workers = 1,
        };
        WsssPipeline.Run(options);
        var again = WsssPipeline.Run(options with { Threads = 2 });                          // every stage reused
        Assert.All(again.Stages, s => Assert.True(s.Reused));
        var run = JsonNode.Parse(File.ReadAllText(dir.File("out/report.json")))!["run"]!;
        Assert.Equal(1, run["threads"]!.GetValue<int>());
        Assert.Equal(2, run["threads_this_invocation"]!.GetValue<int>());
        Assert.Equal("cpu", run["device"]!.GetValue<string>());
    }
}
