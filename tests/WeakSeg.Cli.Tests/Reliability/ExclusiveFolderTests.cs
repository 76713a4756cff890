using System.Text.Json.Nodes;
using WeakSeg.IO;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Reliability;

/// <summary>One process per run or output folder; concurrent writers of one file never collide.</summary>
[Collection("Torch")]
public class ExclusiveFolderTests
{
    [Fact]
    public void A_locked_run_folder_is_refused_with_one_line_and_usable_once_released()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var run = dir.File("run");
        using (FolderLock.Acquire(run, "run directory"))
        {
            var refused = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
            Assert.Equal(1, refused.Code);
            Assert.Equal($"error: {run}: this run directory is in use by another weakseg process (locked through .weakseg.lock); wait for it to finish, or use another folder",
                refused.Err.Trim().Split('\n').Last());
            Assert.False(File.Exists(Path.Combine(run, "config.json")));
            // The same for cam and pseudo output folders and the pipeline.
            var pipeline = CliRunner.Run("pipeline", "--data", data, "--out", run, "--cam-steps", "2", "--seg-steps", "2");
            Assert.Contains("is in use by another weakseg process", pipeline.Err);
        }
        var train = CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config);
        Assert.True(train.Code == 0, train.Err);
    }

    [Fact]
    public async Task Two_concurrent_trainings_into_one_folder_leave_one_valid_run()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var run = dir.File("run");
        var recipe = PipelineTestData.TinyRecipe(steps: 6);
        Task<Exception?> Start() => Task.Run(() =>
        {
            try { TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe, Workers = 1 }); return null; }
            catch (WeakSegException e) { return (Exception?)e; }
        });
        var results = await Task.WhenAll(Start(), Start());
        // Exactly one trains; the other is refused, by the lock while the first runs or by its checkpoints after it finished.
        Assert.Single(results, r => r is null);
        var refusal = Assert.Single(results, r => r is not null)!;
        Assert.True(refusal.Message.Contains("in use by another weakseg process") || refusal.Message.Contains("already holds checkpoints"), refusal.Message);
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        Assert.Equal(Enumerable.Range(1, 6), lines.Select(l => (int)JsonNode.Parse(l)!["step"]!.GetValue<long>()));   // valid JSONL, one record per step
    }

    [Fact]
    public void Temporary_files_of_dead_writers_are_removed_when_the_folder_is_next_locked()
    {
        using var dir = TestPaths.NewTempDir();
        var run = dir.File("run");
        Directory.CreateDirectory(Path.Combine(run, "checkpoints"));
        // A process that has exited: its id is free (a reuse in these milliseconds would only keep its files).
        using var finished = System.Diagnostics.Process.Start("true")!;
        finished.WaitForExit();
        string Temp(string name, int pid, string random = "0a1b2c3d") => Path.Combine(run, $"{name}.{pid}-{random}.tmp");
        var stale = new[]
        {
            Temp("model-final.bin", finished.Id), Temp("metrics.jsonl", int.MaxValue - 1),
            Path.Combine(run, "checkpoints", $"x.npy.{finished.Id}-ffff0000.tmp"),             // subfolders too
        };
        var kept = new[]
        {
            Temp("config.json", Environment.ProcessId),                                         // this process may be writing it
            Temp("report.json", 1),                                                              // a running process (init)
            Path.Combine(run, "notes.tmp"), Temp("a", finished.Id, "0A1B2C3D"), Temp("b", finished.Id, "0a1b2c"),   // not our names
        };
        foreach (var f in stale.Concat(kept)) File.WriteAllText(f, "partial");
        Assert.Equal(finished.Id, AtomicFile.WriterOf(Path.GetFileName(stale[0])));
        Assert.Null(AtomicFile.WriterOf("notes.tmp"));
        Assert.Null(AtomicFile.WriterOf(".123-0a1b2c3d.tmp"));

        using (FolderLock.Acquire(run, "run directory"))
        {
            Assert.All(stale, f => Assert.False(File.Exists(f), f));
            Assert.All(kept, f => Assert.True(File.Exists(f), f));
        }
        // A real writer's temporary name is recognised as its own.
        Assert.Equal(Environment.ProcessId, AtomicFile.WriterOf(Path.GetFileName(AtomicFile.TemporaryPathFor(Path.Combine(run, "m.bin")))));
    }

    [Fact]
    public async Task Concurrent_atomic_writes_of_one_file_never_fail_and_leave_one_whole_version()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("out.bin");
        byte[] Content(int writer) => Enumerable.Repeat((byte)writer, 1 << 16).ToArray();
        await Task.WhenAll(Enumerable.Range(1, 4).Select(w => Task.Run(() =>
        {
            for (int i = 0; i < 50; i++) AtomicFile.WriteAllBytes(path, Content(w));
        })));
        var final = File.ReadAllBytes(path);
        Assert.Equal(1 << 16, final.Length);
        Assert.All(final, b => Assert.Equal(final[0], b));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        Assert.NotEqual(AtomicFile.TemporaryPathFor(path), AtomicFile.TemporaryPathFor(path));
    }
}
