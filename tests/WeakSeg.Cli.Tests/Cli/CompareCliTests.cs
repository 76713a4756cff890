using System.Text.Json.Nodes;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Tests.Visualization;
using WeakSeg.Visualization;

namespace WeakSeg.Tests.Cli;

[Collection("Torch")]
public class CompareCliTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => WeakSeg.Tests.Evaluation.EvalTestData.RunCli(args);

    [Fact]
    public void Compare_runs_every_method_with_the_same_options_then_reuses_the_finished_folders()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var camConfig = dir.File("cam.json");
        File.WriteAllText(camConfig, """
            {"model": {"backbone": {"image_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2}},
             "trainer": {"batch_size": 4, "warmup_steps": 1}}
            """);
        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, PipelineTestData.TinySegmentationConfigJson());
        var outDir = dir.File("compare");
        string[] methods = ["weaktr", "mctformer-v2"];
        string[] command = ["compare", "--methods", string.Join(",", methods), "--data", data, "--out", outDir, "--config", camConfig, "--seg-config", segConfig,
            "--cam-steps", "2", "--seg-steps", "2", "--scales", "1", "--seed", "4", "--no-upper-bound", "--threads", "2", "--workers", "1"];
        var first = Cli(command);
        Assert.True(first.Code == 0, first.Err);
        Assert.Contains(ComparisonReport.HtmlFile, first.Out);

        // every method ran the pipeline with the same options, each in its own folder with its own report
        var compare = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, ComparisonReport.JsonFile)))!;
        var rows = compare["runs"]!.AsArray();
        Assert.Equal(methods, rows.Select(r => r!["folder"]!.GetValue<string>()));
        foreach (var (method, row) in methods.Zip(rows))
        {
            var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, method, "report.json")))!;
            Assert.Equal(method, report["method"]!.GetValue<string>());
            Assert.Equal(4, report["run"]!["seed"]!.GetValue<long>());
            foreach (var key in ComparisonReport.CopiedFields) Assert.True(JsonNode.DeepEquals(report[key], row![key]), key);
            Assert.True(File.Exists(Path.Combine(outDir, method, RunReport.FileName)));
            var camTrain = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, method, "stages", "cam-train.json")))!;
            Assert.Equal(2, camTrain["settings"]!["recipe"]!["trainer"]!["steps"]!.GetValue<long>());
            var segTrain = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, method, "stages", "seg-class-to-patch-gradclip-train.json")))!;
            Assert.Equal(2, segTrain["settings"]!["config"]!["steps"]!.GetValue<long>());
        }

        // compare.html: the table's values are compare.json's; the same example images for both methods, side by side
        var html = File.ReadAllText(Path.Combine(outDir, ComparisonReport.HtmlFile));
        var values = ReportPage.Values(html);
        foreach (var (method, row) in methods.Zip(rows))
            foreach (var key in new[] { "cam_miou", "pseudo_miou", "val_miou" })
                Assert.Equal(row![key]!.GetValue<double>(), values[$"{method}.{key}"]);
        Assert.Null(values["weaktr.upper_bound_miou"]);
        foreach (var row in ReportPage.Rows(html, "train-examples"))
            Assert.All(methods, m => { Assert.Contains($"alt=\"{m} map\"", row); Assert.Contains($"alt=\"{m} pseudo label\"", row); });
        foreach (var row in ReportPage.Rows(html, "val-examples"))
            Assert.All(methods, m => Assert.Contains($"alt=\"{m} prediction\"", row));
        ReportPage.AssertSelfContained(html);

        // run again: every stage is reused and its ledger record is untouched
        var records = methods.SelectMany(m => Directory.GetFiles(Path.Combine(outDir, m, "stages")))
            .ToDictionary(f => f, f => (File.GetLastWriteTimeUtc(f), File.ReadAllText(f)));
        var second = Cli(command);
        Assert.True(second.Code == 0, second.Err);
        foreach (var (file, (time, text)) in records)
        {
            Assert.Equal(time, File.GetLastWriteTimeUtc(file));
            Assert.Equal(text, File.ReadAllText(file));
        }
        foreach (var method in methods)
        {
            var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, method, "report.json")))!;
            Assert.Equal(report["stage_seconds"]!.AsObject().Select(kv => kv.Key), report["reused_stages"]!.AsArray().Select(s => s!.GetValue<string>()));
            var done = ReportPage.Rows(File.ReadAllText(Path.Combine(outDir, method, RunReport.FileName)), "stages").Where(r => r.Contains("<td>done</td>")).ToList();
            Assert.Equal(report["stage_seconds"]!.AsObject().Count, done.Count);
            Assert.All(done, r => Assert.EndsWith("<td>reused</td></tr>\n", r));
        }

        // bad input: one clear line
        var unknown = Cli("compare", "--methods", "weaktr,nosuchmethod", "--data", data, "--out", dir.File("bad"));
        Assert.Equal(1, unknown.Code);
        Assert.Contains("nosuchmethod", unknown.Err);
        Assert.DoesNotContain("   at ", unknown.Err);
        Assert.False(Directory.Exists(Path.Combine(dir.File("bad"), "weaktr")));                   // checked before anything ran
        var twice = Cli("compare", "--methods", "weaktr,weaktr", "--out", dir.File("bad"));
        Assert.Equal(1, twice.Code);
        Assert.Contains("listed twice", twice.Err);
    }
}
