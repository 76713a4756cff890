using System.Globalization;
using System.Text.Json.Nodes;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Reliability;

/// <summary>A stop after a training run's final checkpoint and before model-final.bin (kill -9, power loss, a full disk) resumes.</summary>
[Collection("Torch")]
public class ResumeWindowTests
{
    static float LoggedLoss(string runDir, long step)
    {
        foreach (var line in File.ReadLines(Path.Combine(runDir, "metrics.jsonl")))
        {
            var json = JsonNode.Parse(line)!;
            if (json["step"]!.GetValue<long>() == step) return json["loss"]!.GetValue<float>();
        }
        throw new InvalidOperationException("step not logged");
    }

    [Fact]
    public void Train_resumed_at_its_final_checkpoint_writes_the_weights_and_reports_the_recorded_loss()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var run = dir.File("run");
        var recipe = PipelineTestData.TinyRecipe(steps: 4);
        var full = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe });
        Assert.Equal(4, full.Result.StepsRun);
        var finalWeights = File.ReadAllBytes(Path.Combine(run, "model-final.bin"));
        File.Delete(Path.Combine(run, "model-final.bin"));                                  // the stop window

        var again = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe, Resume = true });
        Assert.True(again.Result.AlreadyComplete);
        Assert.Equal(0, again.Result.StepsRun);
        Assert.Equal(full.Result.LastLoss, again.Result.LastLoss);                          // the real loss, not NaN
        Assert.Equal(LoggedLoss(run, 4), again.Result.LastLoss);
        Assert.Equal(0, again.Result.ImagesPerSecond);
        Assert.Equal(finalWeights, File.ReadAllBytes(Path.Combine(run, "model-final.bin")));

        // A checkpoint written before the loss was recorded in state.json: the loss comes from metrics.jsonl.
        var state = Path.Combine(run, "checkpoints", CheckpointStore.FolderName(4), CheckpointStore.StateFile);
        var json = JsonNode.Parse(File.ReadAllText(state))!.AsObject();
        Assert.True(json.Remove("last_loss"));
        File.WriteAllText(state, json.ToJsonString());
        File.Delete(Path.Combine(run, "model-final.bin"));
        var old = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe, Resume = true });
        Assert.Equal(LoggedLoss(run, 4), old.Result.LastLoss);
    }

    [Fact]
    public void Cli_train_resume_of_a_complete_run_says_already_complete_with_the_last_loss()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 3).ToJsonString());
        var run = dir.File("run");
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
        Assert.True(train.Code == 0, train.Err);
        File.Delete(Path.Combine(run, "model-final.bin"));

        var resumed = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--resume");
        Assert.True(resumed.Code == 0, resumed.Err);
        var loss = LoggedLoss(run, 3).ToString("F4", CultureInfo.InvariantCulture);
        Assert.Contains($"already complete at step 3, last loss {loss}", resumed.Out);
        Assert.DoesNotContain("NaN", resumed.Out);
        Assert.DoesNotContain("0.0 img/s", resumed.Out);
        Assert.True(File.Exists(Path.Combine(run, "model-final.bin")));
    }

    [Fact]
    public void Pipeline_stopped_between_the_final_checkpoint_and_model_final_resumes()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var options = new WsssPipelineOptions
        {
            OutDirectory = dir.File("out"), DataRoot = data, CamRecipe = PipelineTestData.TinyRecipe(steps: 4),
            Localization = new LocalizationOptions { Scales = [1.0], Flip = false }, StopAfter = PipelineEnd.Cam, Seed = 3, Threads = 2, Workers = 1,
        };
        var reference = WsssPipeline.Run(options);
        var record = Path.Combine(dir.File("out"), "stages", "cam-train.json");
        var recorded = JsonNode.Parse(File.ReadAllText(record))!.AsObject();
        var loss = recorded["results"]!["last_loss"]!.GetValue<double>();

        // The state a stop in the window leaves: the final checkpoint on disk, no model-final.bin, the stage still running,
        // no later stage begun.
        File.Delete(Path.Combine(dir.File("out"), "cam", "run", "model-final.bin"));
        recorded["status"] = "running";
        recorded["results"] = null;
        File.WriteAllText(record, recorded.ToJsonString());
        foreach (var later in Directory.GetFiles(Path.Combine(dir.File("out"), "stages")).Where(f => f != record)) File.Delete(later);
        Directory.Delete(Path.Combine(dir.File("out"), "cam", "maps-class-to-patch"), recursive: true);

        var resumed = WsssPipeline.Run(options);
        Assert.Equal(reference.CamMeanIou, resumed.CamMeanIou);
        var again = JsonNode.Parse(File.ReadAllText(record))!;
        Assert.Equal("done", again["status"]!.GetValue<string>());
        Assert.Equal(loss, again["results"]!["last_loss"]!.GetValue<double>());            // the final checkpoint's loss
        Assert.Equal(0, again["results"]!["steps_this_run"]!.GetValue<long>());
        Assert.Null(again["results"]!["images_per_s"]);
        Assert.True(File.Exists(Path.Combine(dir.File("out"), "cam", "run", "model-final.bin")));
    }

    [Fact]
    public void A_stage_record_with_non_finite_numbers_is_written_with_nulls()
    {
        using var dir = TestPaths.NewTempDir();
        var ledger = new StageLedger(dir.File("stages"));
        var settings = new JsonObject { ["steps"] = 1 };
        ledger.Complete("train", settings, 1, new JsonObject
        {
            ["loss"] = float.NaN, ["rate"] = double.PositiveInfinity, ["inner"] = new JsonObject { ["x"] = double.NegativeInfinity }, ["ok"] = 0.5,
        });
        var (state, results, _) = ledger.Check("train", settings);
        Assert.Equal(StageState.Done, state);
        Assert.Null(results!["loss"]);
        Assert.Null(results["rate"]);
        Assert.Null(results["inner"]!["x"]);
        Assert.Equal(0.5, results["ok"]!.GetValue<double>());
    }
}
