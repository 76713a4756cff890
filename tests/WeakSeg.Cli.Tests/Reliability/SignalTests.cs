using System.Text.Json.Nodes;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Reliability;

/// <summary>SIGTERM (docker stop, systemd, batch schedulers) and Ctrl-C stop a run with a checkpoint, exit 143 / 130, and the rerun
/// resumes exactly. The signals go to a child `weakseg` process.</summary>
[Collection("Torch")]
public class SignalTests
{
    const int Steps = 300;

    static string TinyConfig(TempDir dir)
    {
        var overlay = PipelineTestData.TinyOverlay(steps: Steps);
        overlay["trainer"]!["checkpoint_every"] = 100_000;                                // only the stop writes a checkpoint
        var path = dir.File("tiny.json");
        File.WriteAllText(path, overlay.ToJsonString());
        return path;
    }

    static int LoggedSteps(string runDir)
    {
        var metrics = Path.Combine(runDir, "metrics.jsonl");
        try { return File.Exists(metrics) ? File.ReadAllLines(metrics).Count(l => l.Length > 0) : 0; }
        catch (IOException) { return 0; }
    }

    /// <summary>Starts the CLI, waits until its training run in <paramref name="runDir"/> has logged a few steps, sends the signal and
    /// returns the exit code and output.</summary>
    static (int Code, string Out, string Err) StopDuringTraining(string[] args, string runDir, int signal)
    {
        using var cli = CliProcess.Start(args);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (LoggedSteps(runDir) < 3 && !cli.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(10);
        if (cli.HasExited) Assert.Fail("the run ended before it could be stopped: " + cli.WaitForExit(TimeSpan.FromSeconds(10)).Err);
        cli.Signal(signal);
        return cli.WaitForExit(TimeSpan.FromMinutes(3));
    }

    static long CheckpointStep(string runDir) => Assert.Single(new CheckpointStore(Path.Combine(runDir, "checkpoints")).List()).Step;

    [Fact]
    public void Sigterm_during_train_checkpoints_exits_143_and_the_resumed_run_is_bitwise_the_uninterrupted_one()
    {
        if (OperatingSystem.IsWindows()) return;                                         // POSIX signals
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = TinyConfig(dir);
        string[] Train(string run, params string[] more) =>
            ["train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--threads", "1", "--workers", "1", .. more];

        var stopped = StopDuringTraining(Train(dir.File("run")), dir.File("run"), CliProcess.SigTerm);
        Assert.True(stopped.Code == 143, $"exit {stopped.Code}: {stopped.Err}");
        Assert.Contains("SIGTERM: stopping after this step, with a checkpoint", stopped.Err);
        long step = CheckpointStep(dir.File("run"));
        Assert.InRange(step, 3, Steps - 1);
        Assert.Contains($"stopped at step {step}; checkpoint ", stopped.Out);
        Assert.Contains("continue with --resume", stopped.Out);
        Assert.False(File.Exists(dir.File("run/model-final.bin")));

        var resumed = CliProcess.Run(Train(dir.File("run"), "--resume"));
        Assert.True(resumed.Code == 0, resumed.Err);
        var reference = CliProcess.Run(Train(dir.File("reference")));
        Assert.True(reference.Code == 0, reference.Err);
        Assert.Equal(File.ReadAllBytes(dir.File("reference/model-final.bin")), File.ReadAllBytes(dir.File("run/model-final.bin")));
    }

    [Fact]
    public void Ctrl_c_during_the_pipeline_checkpoints_exits_130_with_a_hint_and_the_rerun_completes()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = TinyConfig(dir);
        var outDir = dir.File("pipe");
        string[] pipeline = ["pipeline", "--method", "mctformer-v2", "--data", data, "--out", outDir, "--config", config, "--stop-after", "cam", "--scales", "1", "--no-flip",
            "--threads", "1", "--workers", "1"];
        var camRun = Path.Combine(outDir, "cam", "run");

        var stopped = StopDuringTraining(pipeline, camRun, CliProcess.SigInt);
        Assert.True(stopped.Code == 130, $"exit {stopped.Code}: {stopped.Err}");
        Assert.Contains("Ctrl-C: stopping after this step, with a checkpoint", stopped.Err);
        Assert.Contains("stopped by Ctrl-C; run the same command again to resume", stopped.Err);
        Assert.DoesNotContain("error:", stopped.Err);
        long step = CheckpointStep(camRun);
        Assert.InRange(step, 3, Steps - 1);

        var rerun = CliProcess.Run(pipeline);
        Assert.True(rerun.Code == 0, rerun.Err);
        Assert.Contains("cam-train: continuing an unfinished stage", rerun.Out + rerun.Err);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.True(report["complete"]!.GetValue<bool>());
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "stages", "cam-train.json")))!;
        Assert.Contains($"\"steps\":{Steps}", record.ToJsonString());
        Assert.Contains($"\"steps_this_run\":{Steps - step}", record.ToJsonString());
    }
}
