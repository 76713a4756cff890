using System.Text.Json;
using System.Text.RegularExpressions;
using TorchSharp;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

[Collection("Torch")]
public class TrainerTests
{
    static TrainerOptions Options(long steps = 12, long seed = 7) => new()
    {
        Steps = steps, BatchSize = 4, BaseLr = 5e-2, MinLr = 1e-3, WarmupStartLr = 1e-3, WarmupSteps = 3,
        WeightDecay = 0.05, GradClipNorm = 1.0, CheckpointEvery = 3, KeepLastCheckpoints = 2, LogEvery = 1, Seed = seed,
    };

    /// <summary>(step, loss, cls, reg, lr, grad_norm) of every metrics line — everything but wall-clock figures.</summary>
    static List<string> LoggedNumbers(string metricsPath) => File.ReadLines(metricsPath).Select(l =>
    {
        var e = JsonDocument.Parse(l).RootElement;
        var p = e.GetProperty("parts");
        return $"{e.GetProperty("step").GetInt64()} {e.GetProperty("loss").GetRawText()} {p.GetProperty("cls").GetRawText()} " +
               $"{p.GetProperty("reg").GetRawText()} {e.GetProperty("lr").GetRawText()} {e.GetProperty("grad_norm").GetRawText()}";
    }).ToList();

    static (float[] Weights, List<string> Log, TrainResult Result) Uninterrupted(TempDir dir, TrainerOptions o)
    {
        var t = TinyTrainable.Create(o.Seed);
        var trainer = new Trainer(o, dir.File("run"));
        var r = trainer.Run(t, SyntheticBatches.Create());
        return (Weights.Flatten(t.Net), LoggedNumbers(trainer.MetricsPath), r);
    }

    [Fact]
    public void Same_seed_gives_identical_weights_and_losses_and_training_lowers_the_loss()
    {
        using var d1 = TestPaths.NewTempDir();
        using var d2 = TestPaths.NewTempDir();
        using var d3 = TestPaths.NewTempDir();
        var a = Uninterrupted(d1, Options(steps: 20));
        var b = Uninterrupted(d2, Options(steps: 20));
        var c = Uninterrupted(d3, Options(steps: 20, seed: 8));
        Assert.Equal(a.Weights, b.Weights);
        Assert.Equal(a.Log, b.Log);
        Assert.NotEqual(a.Weights, c.Weights); // the seed matters (the test could fail)
        Assert.Equal(20, a.Log.Count);
        var losses = a.Log.Select(l => float.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(losses[^5..].Average() < losses[..5].Average(), $"loss did not decrease: {losses[..5].Average()} → {losses[^5..].Average()}");
        Assert.True(a.Result.Completed);
        Assert.True(File.Exists(a.Result.FinalWeightsPath));
        Assert.Equal(20, a.Result.LatestCheckpoint!.Step);
        // logged lr equals the schedule
        var lr = LearningRateSchedule.For(Options(steps: 20));
        Assert.Equal(lr[0], JsonDocument.Parse(File.ReadLines(Path.Combine(d1.Path, "run", "metrics.jsonl")).First()).RootElement.GetProperty("lr").GetDouble());
    }

    [Fact]
    public void Cancel_then_resume_equals_an_uninterrupted_run_bitwise()
    {
        using var d1 = TestPaths.NewTempDir();
        using var d2 = TestPaths.NewTempDir();
        var o = Options(steps: 12);
        var reference = Uninterrupted(d1, o);

        // First half: cancel after step 5 (not a multiple of CheckpointEvery = 3): the trainer writes a checkpoint of step 5.
        using var cts = new CancellationTokenSource();
        var first = new Trainer(o, d2.File("run")) { StepCompleted = r => { if (r.Step == 5) cts.Cancel(); } };
        var half = first.Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), cancellationToken: cts.Token);
        Assert.False(half.Completed);
        Assert.Equal(5, half.Step);
        Assert.Equal(5, half.LatestCheckpoint!.Step);
        Assert.Null(half.FinalWeightsPath);

        // Second half: new trainer, new model instance with a different initialisation (overwritten by the checkpoint).
        var resumedModel = TinyTrainable.Create(seed: 999);
        var second = new Trainer(o, d2.File("run"));
        var done = second.Run(resumedModel, SyntheticBatches.Create(), resume: true);
        Assert.True(done.Completed);
        Assert.Equal(reference.Weights, Weights.Flatten(resumedModel.Net));
        Assert.Equal(reference.Log, LoggedNumbers(second.MetricsPath));
        Assert.Equal(new long[] { 9, 12 }, new CheckpointStore(second.CheckpointDirectory).List().Select(c => c.Step).ToArray()); // keep last 2
    }

    [Fact]
    public void Crash_after_a_checkpoint_then_resume_truncates_the_log_and_matches()
    {
        using var d1 = TestPaths.NewTempDir();
        using var d2 = TestPaths.NewTempDir();
        var o = Options(steps: 10);
        var reference = Uninterrupted(d1, o);

        // Crash at step 8: checkpoints exist for 3 and 6; metrics.jsonl already holds lines 7 and 8.
        var crashing = new Trainer(o, d2.File("run")) { StepCompleted = r => { if (r.Step == 8) throw new IOException("simulated crash"); } };
        Assert.Throws<IOException>(() => crashing.Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create()));
        Assert.Equal(8, File.ReadLines(crashing.MetricsPath).Count());
        Assert.Equal(6, new CheckpointStore(crashing.CheckpointDirectory).Latest()!.Step);

        var resumed = TinyTrainable.Create(o.Seed);
        var trainer = new Trainer(o, d2.File("run"));
        trainer.Run(resumed, SyntheticBatches.Create(), resume: true);
        Assert.Equal(reference.Weights, Weights.Flatten(resumed.Net));
        Assert.Equal(reference.Log, LoggedNumbers(trainer.MetricsPath)); // lines 7, 8 rewritten once, not duplicated
    }

    [Fact]
    public void Nan_loss_stops_with_step_and_part_and_keeps_the_last_good_checkpoint()
    {
        using var dir = TestPaths.NewTempDir();
        var o = Options(steps: 12);
        var trainer = new Trainer(o, dir.File("run"));
        var t = TinyTrainable.Create(o.Seed, nanAtStepIndex: 7); // the 8th step
        var e = Assert.Throws<WeakSegException>(() => trainer.Run(t, SyntheticBatches.Create()));
        Assert.Contains("step 8: the loss is NaN", e.Message);
        Assert.Contains("cls = NaN", e.Message);
        Assert.DoesNotContain("reg =", e.Message);
        Assert.Contains("step-000000006", e.Message);

        var store = new CheckpointStore(trainer.CheckpointDirectory);
        Assert.Equal(new long[] { 3, 6 }, store.List().Select(c => c.Step).ToArray());
        Assert.False(File.Exists(trainer.FinalWeightsPath));
        Assert.Equal(7, JsonDocument.Parse(File.ReadLines(trainer.MetricsPath).Last()).RootElement.GetProperty("step").GetInt64());
        // the last good checkpoint is intact: it loads, and holds finite weights
        using var fresh = new TinyNet();
        CheckpointStore.LoadModel(store.Latest()!.ModelPath, fresh);
        Assert.All(Weights.Flatten(fresh), v => Assert.True(float.IsFinite(v)));
        // the weights in memory were not updated by the bad step either
        Assert.All(Weights.Flatten(t.Net), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Live_tensor_count_stays_flat_over_200_steps()
    {
        using var dir = TestPaths.NewTempDir();
        var o = Options(steps: 200) with { CheckpointEvery = 1000, LogEvery = 50 };
        var t = TinyTrainable.Create(o.Seed);
        var live = new Dictionary<long, long>();
        var trainer = new Trainer(o, dir.File("run"))
        {
            StepCompleted = r => live[r.Step] = DisposeScopeManager.Statistics.ThreadTotalLiveCount,
        };
        DisposeScopeManager.Statistics.Reset();
        trainer.Run(t, SyntheticBatches.Create());
        Assert.Equal(200, live.Count);
        Assert.Equal(live[10], live[200]);
        Assert.Equal(live[10], live[100]);
    }

    [Fact]
    public void Progress_reports_every_step_with_loss_and_rate()
    {
        using var dir = TestPaths.NewTempDir();
        var o = Options(steps: 6);
        var updates = new List<ProgressUpdate>();
        var progress = new SyncProgress(updates.Add);
        new Trainer(o, dir.File("run")).Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), progress: progress);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5, 6 }, updates.Select(u => u.Done).ToArray());
        Assert.All(updates, u => Assert.Equal(6, u.Total));
        Assert.All(updates.Skip(1), u => Assert.Matches(new Regex(@"^loss \d+\.\d{3} · \d+\.\d step/s$"), u.Status!));
    }

    [Fact]
    public void Bad_runs_fail_with_messages_that_name_the_problem()
    {
        using var dir = TestPaths.NewTempDir();
        var invalid = Assert.Throws<WeakSegException>(() => new Trainer(Options() with { WarmupSteps = 50, LogEvery = 0 }, dir.File("run")));
        Assert.Contains("WarmupSteps", invalid.Message);
        Assert.Contains("LogEvery", invalid.Message);

        var noCheckpoint = Assert.Throws<WeakSegException>(() =>
            new Trainer(Options(), dir.File("run")).Run(TinyTrainable.Create(1), SyntheticBatches.Create(), resume: true));
        Assert.Contains("no checkpoint to resume from", noCheckpoint.Message);
        Assert.Contains(Path.Combine("run", "checkpoints"), noCheckpoint.Message);

        var o = Options(steps: 3);
        new Trainer(o, dir.File("run")).Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create());
        var again = Assert.Throws<WeakSegException>(() => new Trainer(o, dir.File("run")).Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create()));
        Assert.Contains("already holds checkpoints", again.Message);

        var changed = Assert.Throws<WeakSegException>(() =>
            new Trainer(o with { BaseLr = 0.1 }, dir.File("run")).Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), resume: true));
        Assert.Contains("state.json", changed.Message);
        Assert.Contains("BaseLr is 0.1 but the checkpoint used 0.05", changed.Message);

        // resuming a finished run is a no-op that still completes
        var finished = new Trainer(o with { LogEvery = 2 }, dir.File("run")).Run(TinyTrainable.Create(o.Seed), SyntheticBatches.Create(), resume: true);
        Assert.True(finished.Completed);
        Assert.Equal(3, finished.Step);
    }

    sealed class SyncProgress(Action<ProgressUpdate> report) : IProgress<ProgressUpdate>
    {
        public void Report(ProgressUpdate value) => report(value);
    }
}
