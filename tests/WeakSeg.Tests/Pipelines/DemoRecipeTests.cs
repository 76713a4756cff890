using System.Text.Json.Nodes;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

/// <summary>`demo` is a recipe of the pipeline's stage engine: the same ledger and resume rule, and a report.json with the pipeline's fields.</summary>
[Collection("Torch")]
public class DemoRecipeTests
{
    static DemoOptions Tiny(string outDir) => Reliability.WeakDemoTests.Tiny(outDir);

    static IEnumerable<string> Keys(JsonNode? node) => node!.AsObject().Select(kv => kv.Key).Order(StringComparer.Ordinal);

    [Fact]
    public void Demo_report_has_the_pipeline_report_fields_and_a_second_demo_reuses_every_stage()
    {
        using var dir = TestPaths.NewTempDir();
        var demoDir = dir.File("demo");
        var demo = DemoPipeline.Run(Tiny(demoDir));
        var pipeline = WsssPipeline.Run(PipelineTestData.TinyOptions(PipelineTestData.MakeData(dir.File("data")), dir.File("pipeline")) with
        {
            StopAfter = PipelineEnd.Pseudo,
        });

        var demoReport = JsonNode.Parse(File.ReadAllText(demo.ReportPath))!;
        var pipelineReport = JsonNode.Parse(File.ReadAllText(pipeline.ReportPath))!;
        Assert.Equal(Path.Combine(Path.GetFullPath(demoDir), WsssPipeline.ReportFile), demo.ReportPath);
        Assert.Equal(Keys(pipelineReport), Keys(demoReport));
        Assert.Equal(Keys(pipelineReport["run"]), Keys(demoReport["run"]));
        // the demo's numbers in its report.json are those of its result (and metrics.json)
        Assert.Equal(demo.CamMeanIou!.Value, demoReport["cam_miou"]!.GetValue<double>());
        Assert.Equal(demo.PseudoMeanIou!.Value, demoReport["pseudo_miou"]!.GetValue<double>());
        Assert.Equal(demo.Threshold, demoReport["threshold"]!.GetValue<double>());
        Assert.Equal("fused", demoReport["map"]!.GetValue<string>());
        Assert.Equal(["data", "cam-train", "maps-fused", "pseudo-fused", "cam-eval-fused", "pseudo-eval-fused", "overlays"],
            demoReport["stage_seconds"]!.AsObject().Select(kv => kv.Key));
        Assert.Empty(demoReport["reused_stages"]!.AsArray());

        // run again: the ledger has every stage done, nothing is recomputed and the numbers are the same
        var modelFile = Path.Combine(DemoPipeline.RunDirectory(demoDir, WeakSeg.Methods.BuiltInMethods.DemoMethod), WeakSeg.Training.RunDirectory.FinalWeightsFile);
        var written = File.GetLastWriteTimeUtc(modelFile);
        var ran = new List<string>();
        var again = DemoPipeline.Run(Tiny(demoDir), stageCompleted: ran.Add);
        Assert.Empty(ran);
        Assert.Equal(written, File.GetLastWriteTimeUtc(modelFile));
        Assert.Equal((demo.CamMeanIou, demo.PseudoMeanIou, demo.Threshold), (again.CamMeanIou, again.PseudoMeanIou, again.Threshold));
        Assert.Equal(demo.Sweep!.BestThreshold, again.Sweep!.BestThreshold);
        var againReport = JsonNode.Parse(File.ReadAllText(again.ReportPath))!;
        Assert.Equal(7, againReport["reused_stages"]!.AsArray().Count);

        // another step count in the same folder is refused by the ledger, naming the training's record
        var e = Assert.Throws<WeakSegException>(() => DemoPipeline.Run(Tiny(demoDir) with { Steps = 3 }));
        Assert.Contains(Path.Combine(Path.GetFullPath(demoDir), "stages", "cam-train.json"), e.Message);
        Assert.Contains("recipe.trainer.steps", e.Message);
    }
}
