using System.Text.Json.Nodes;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Segmentation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Cli;

/// <summary>The configuration language at the command line: K from --data, the preset table in the help.</summary>
[Collection("Torch")]
public class ConfigurationLanguageCliTests
{
    [Fact]
    public void Train_takes_the_class_count_from_data_and_refuses_another_one()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        string[] common = ["train", "--method", "cam-resnet18", "--data", data, "--set", "model.image_size=32", "--steps", "1", "--batch-size", "4",
            "--warmup", "0", "--threads", "2", "--workers", "1"];
        var run = SegmentationRunTests.RunCli([.. common, "--out", dir.File("run")]);
        Assert.True(run.Code == 0, run.Err);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("run"), "config.json")))!;
        Assert.Equal(3, config["model"]!["num_classes"]!.GetValue<int>());
        Assert.Equal(3, RunConfig.Load(dir.File("run")).Recipe.ModelConfig.NumClasses);

        var other = SegmentationRunTests.RunCli([.. common, "--out", dir.File("other"), "--set", "model.num_classes=20"]);
        Assert.NotEqual(0, other.Code);
        Assert.Contains("model.num_classes is 20", other.Err);
        Assert.Contains("has 3 foreground classes", other.Err);
        Assert.False(Directory.Exists(dir.File("other")) && File.Exists(Path.Combine(dir.File("other"), "config.json")));
    }

    [Fact]
    public void Config_files_naming_another_class_count_are_refused_in_one_line_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var segConfig = JsonNode.Parse(PipelineTestData.TinySegmentationConfigJson(steps: 1))!.AsObject();
        segConfig["num_classes"] = 20;
        var segPath = dir.File("seg-voc.json");
        File.WriteAllText(segPath, segConfig.ToJsonString());
        var pipeline = SegmentationRunTests.RunCli(["pipeline", "--method", "mctformer-v2", "--data", data, "--out", dir.File("pipe"), "--seg-config", segPath,
            "--threads", "2", "--workers", "1"]);
        Assert.NotEqual(0, pipeline.Code);
        var line = Assert.Single(pipeline.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(segPath + ": num_classes is 20 but the dataset", line);
        Assert.Contains("has 3 foreground classes", line);
        Assert.False(File.Exists(Path.Combine(dir.File("pipe"), "stages", "cam-train.json")));

        var camPath = dir.File("cam-voc.json");
        File.WriteAllText(camPath, """{ "model": { "num_classes": 20 } }""");
        var train = SegmentationRunTests.RunCli(["train", "--method", "mctformer-v2", "--data", data, "--out", dir.File("run"), "--config", camPath,
            "--steps", "1", "--threads", "2", "--workers", "1"]);
        Assert.NotEqual(0, train.Code);
        Assert.Contains(camPath + ": model.num_classes is 20 but the dataset", train.Err);
        Assert.Contains("has 3 foreground classes", train.Err);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("pipeline")]
    [InlineData("compare")]
    public void Preset_help_lists_the_rows_of_the_preset_table(string verb)
    {
        var help = SegmentationRunTests.RunCli([verb, "--help"]);
        Assert.Equal(0, help.Code);
        var text = string.Join(" ", help.Out.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));   // the help wraps lines
        foreach (var bundle in Presets.All)
            Assert.Contains($"{bundle.Name}: {bundle.Summary}", text);
    }
}
