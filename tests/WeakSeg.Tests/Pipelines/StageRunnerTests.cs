using System.Text.Json.Nodes;
using WeakSeg.Data.Synthetic;
using WeakSeg.IO;
using WeakSeg.Pipelines;
using WeakSeg.Pipelines.Stages;
using WeakSeg.Runtime;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

/// <summary>The stage engine: a done stage is reused without calling its work, an unfinished one continues from its partial outputs,
/// a stage recorded with another (upstream, nested) setting is refused naming its record, and records written before the stages were
/// types are reused.</summary>
public class StageRunnerTests
{
    /// <summary>Writes <see cref="CountingSettings.Images"/> files into a folder through the image job, counting calls and images.</summary>
    sealed record CountingSettings(IStageSettings Upstream, int Images) : IStageSettings
    {
        public JsonObject ToJson() => new() { ["upstream"] = Upstream.ToJson(), ["images"] = Images };
    }

    sealed record CountingStage(string StageName, CountingSettings Settings, string OutDirectory) : Stage<CountingSettings, MapsResults>(StageName, Settings)
    {
        public int Calls { get; private set; }
        public int Processed { get; private set; }

        public override MapsResults Run(StageContext context)
        {
            Calls++;
            var names = Enumerable.Range(0, Settings.Images).Select(i => $"img_{i}").ToList();
            var summary = new ImageDirectoryJob { Names = names, IsDone = n => File.Exists(Path.Combine(OutDirectory, n)) }
                .Run(i => AtomicFile.WriteAllText(Path.Combine(OutDirectory, names[i]), names[i]), null, context.CancellationToken);
            Processed += summary.Written;
            return new MapsResults(summary.Images);
        }
    }

    static DataSettings Data(long seed = 0) => DataSettings.Generated(new SyntheticDatasetConfig { Seed = seed });

    static StageRunner Runner(string dir, List<string>? log = null) =>
        new(new StageLedger(Path.Combine(dir, "stages")), new StageContext { Reporter = new SilentStageReporter(line => log?.Add(line)), Threads = 1 });

    [Fact]
    public void A_done_stage_is_reused_without_calling_its_work()
    {
        using var dir = TestPaths.NewTempDir();
        var stage = new CountingStage("count", new CountingSettings(Data(), 4), dir.Path);
        var first = Runner(dir.Path).Run(stage);
        Assert.Equal((1, 4), (stage.Calls, stage.Processed));

        var log = new List<string>();
        var runner = Runner(dir.Path, log);
        var again = runner.Run(stage);
        Assert.Equal(1, stage.Calls);                                               // not called again
        Assert.Equal(first, again);                                                  // the recorded results, typed
        Assert.True(runner.Stages.Single().Reused);
        Assert.Contains(log, l => l.StartsWith("count: done before, reused", StringComparison.Ordinal));
        Assert.Equal(1, runner.ComputedWith["count"]!["threads"]!.GetValue<int>());
    }

    [Fact]
    public void An_unfinished_stage_runs_again_keeping_its_partial_outputs_and_its_time()
    {
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.File("out");
        var stage = new CountingStage("count", new CountingSettings(Data(), 6), outDir);
        // an earlier invocation began the stage, wrote 2 of its 6 outputs and was stopped after 3.5 s
        var ledger = new StageLedger(dir.File("stages"));
        ledger.Begin("count", stage.Settings.ToJson(), 3.5);
        foreach (var name in new[] { "img_0", "img_3" }) AtomicFile.WriteAllText(Path.Combine(outDir, name), name);

        var log = new List<string>();
        var runner = Runner(dir.Path, log);
        var results = runner.Run(stage);
        Assert.Equal((1, 4), (stage.Calls, stage.Processed));                       // the work ran, on the 4 images left
        Assert.Equal(6, results.Images);
        Assert.Contains("count: continuing an unfinished stage", log);
        var recorded = runner.Stages.Single();
        Assert.False(recorded.Reused);
        Assert.True(recorded.Seconds >= 3.5);
        Assert.Equal(StageState.Done, ledger.Check("count", stage.Settings.ToJson()).State);
    }

    [Fact]
    public void A_changed_upstream_setting_refuses_the_downstream_stage_naming_its_record_and_the_nested_key()
    {
        using var dir = TestPaths.NewTempDir();
        var upstream = new MapsSettings(new CamTrainSettings(Data(seed: 0), "train", 5, new JsonObject { ["method"] = "m" }, null), "fused", [1.0], true);
        var stage = new CountingStage("count", new CountingSettings(upstream, 2), dir.File("out"));
        Runner(dir.Path).Run(stage);

        var changed = new CountingStage("count",
            stage.Settings with { Upstream = upstream with { CamTrain = ((CamTrainSettings)upstream.CamTrain) with { Data = Data(seed: 1) } } }, dir.File("out"));
        var e = Assert.Throws<WeakSegException>(() => Runner(dir.Path).Run(changed));
        Assert.Contains(Path.Combine(dir.Path, "stages", "count.json"), e.Message);
        Assert.Contains("(upstream.cam_train.data.synthetic.seed)", e.Message);
        Assert.Equal(1, stage.Calls);
        Assert.Equal(0, changed.Calls);
    }

    /// <summary>A maps record exactly as the pipeline wrote it before its stages were types (settings built as JSON by hand).</summary>
    const string RecordWrittenByTheOldPipeline = """
        {
          "stage": "maps-class-to-patch",
          "status": "done",
          "seconds": 12.5,
          "settings": {
            "cam_train": {
              "data": {
                "synthetic": {
                  "train_images": 400,
                  "val_images": 100,
                  "image_size": 96,
                  "num_classes": 10,
                  "seed": 0,
                  "jpeg_quality": 90,
                  "supersampling": 4,
                  "trap_background_probability": 0.9,
                  "trap_background_elsewhere_probability": 0.03,
                  "border_radius": 1
                }
              },
              "split": "train",
              "seed": 0,
              "recipe": {
                "method": "mctformer-v2",
                "trainer": {
                  "steps": 300
                }
              }
            },
            "map": "class-to-patch",
            "scales": [
              1,
              0.5,
              1.5
            ],
            "flip": true
          },
          "results": {
            "images": 400,
            "computed_with": {
              "threads": 1,
              "device": "cpu"
            }
          }
        }
        """;

    [Fact]
    public void A_record_written_before_the_stages_were_types_is_reused_by_the_typed_stage()
    {
        using var dir = TestPaths.NewTempDir();
        Directory.CreateDirectory(dir.File("stages"));
        File.WriteAllText(dir.File("stages/maps-class-to-patch.json"), RecordWrittenByTheOldPipeline);
        var camTrain = new CamTrainSettings(DataSettings.Generated(new SyntheticDatasetConfig()), "train", 0,
            new JsonObject { ["method"] = "mctformer-v2", ["trainer"] = new JsonObject { ["steps"] = 300 } }, null);
        var maps = new MapsStage("maps-class-to-patch", new MapsSettings(camTrain, "class-to-patch", [1.0, 0.5, 1.5], true),
            new CamRequest { RunDirectory = dir.File("no-run"), OutDirectory = dir.File("no-maps") });     // never run: reused
        var runner = Runner(dir.Path);
        Assert.Equal(new MapsResults(400), runner.Run(maps));
        Assert.Equal(new PipelineStage("maps-class-to-patch", 12.5, true), runner.Stages.Single());
        Assert.Equal(1, runner.ComputedWith["maps-class-to-patch"]!["threads"]!.GetValue<int>());

        // one setting changed in the typed record: refused, naming the record
        var other = maps with { Settings = maps.Settings with { Flip = false } };
        var e = Assert.Throws<WeakSegException>(() => Runner(dir.Path).Run(other));
        Assert.Contains(dir.File("stages/maps-class-to-patch.json"), e.Message);
        Assert.Contains("(flip)", e.Message);
    }

    [Fact]
    public void Typed_results_read_back_what_they_record_and_null_for_numbers_json_cannot_hold()
    {
        var training = new TrainingResults(40, 10, 0.25, null);
        Assert.Equal(training, TrainingResults.FromJson(JsonNode.Parse(training.ToJson().ToJsonString())!.AsObject()));
        var sweep = new SweepResults(double.NaN, 0.35, new JsonObject { ["0.35"] = 0.5 }, 0.125);
        var json = sweep.ToJson();
        Assert.Null(json["miou"]);
        var read = SweepResults.FromJson(JsonNode.Parse(json.ToJsonString())!.AsObject());
        Assert.Equal((null, 0.35, 0.125), (read.MeanIou, read.Threshold, read.ArtifactRate));
        Assert.Equal(0.5, read.MeanIouByThreshold["0.35"]!.GetValue<double>());
        Assert.Equal(new ScoreResults(null), ScoreResults.FromJson(new ScoreResults(double.PositiveInfinity).ToJson()));
    }
}
