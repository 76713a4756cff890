using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Runtime;
using WeakSeg.Tests.Data;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

[Collection("Torch")]
public class RunDirectoryTests
{
    static void FakeCheckpoint(RunDirectory run, long step, bool complete = true)
    {
        var folder = Path.Combine(run.CheckpointDirectory, (complete ? "" : ".incomplete-") + CheckpointStore.FolderName(step));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, CheckpointStore.ModelFile), "weights");
        if (complete) File.WriteAllText(Path.Combine(folder, CheckpointStore.StateFile), "{}");
    }

    [Fact]
    public void The_layout_is_one_set_of_names_under_the_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var run = new RunDirectory(dir.File("run"));
        Assert.Equal(
            [dir.File("run/config.json"), dir.File("run/checkpoints"), dir.File("run/metrics.jsonl"), dir.File("run/model-final.bin"), dir.File("run/loss.png")],
            [run.ConfigPath, run.CheckpointDirectory, run.MetricsPath, run.FinalWeightsPath, run.LossCurvePath]);
        var trainer = new Trainer(new TrainerOptions { Steps = 1, WarmupSteps = 0 }, dir.File("run"));
        Assert.Equal((run.Path, run.CheckpointDirectory, run.MetricsPath, run.FinalWeightsPath),
            (trainer.RunDirectory, trainer.CheckpointDirectory, trainer.MetricsPath, trainer.FinalWeightsPath));
    }

    [Fact]
    public void Weights_are_the_final_file_else_the_latest_complete_checkpoint()
    {
        using var dir = TestPaths.NewTempDir();
        var run = new RunDirectory(dir.File("run"));
        var none = Assert.Throws<WeakSegException>(() => run.ResolveWeights());
        Assert.Contains(run.FinalWeightsPath, none.Message);
        Assert.Contains("neither model-final.bin nor a checkpoint", none.Message);
        Assert.False(run.HasCheckpoint);

        FakeCheckpoint(run, 30, complete: false);
        Assert.False(run.HasCheckpoint);
        FakeCheckpoint(run, 10);
        FakeCheckpoint(run, 20);
        Assert.True(run.HasCheckpoint);
        Assert.False(run.IsFinished);
        Assert.Equal(Path.Combine(run.CheckpointDirectory, "step-000000020", "model.bin"), run.ResolveWeights());

        File.WriteAllText(run.FinalWeightsPath, "final");
        Assert.True(run.IsFinished);
        Assert.Equal(run.FinalWeightsPath, run.ResolveWeights());

        var refused = Assert.Throws<WeakSegException>(() => run.RefuseExistingCheckpoints());
        Assert.Contains(run.CheckpointDirectory, refused.Message);
        Assert.Contains("already holds checkpoints (latest: step 20)", refused.Message);
    }

    /// <summary>What a test job records: its config.json and how often each step of the template ran.</summary>
    sealed record ToyConfig(string Note) : IRunConfig<ToyConfig>
    {
        public static int FormatVersion => 1;
        public static string RunKind => "a toy run";
        public JsonObject ToJson() => new() { ["note"] = Note };
        public static ToyConfig FromJson(JsonObject fields, int formatVersion, string path) => new(fields["note"]!.GetValue<string>());
    }

    sealed class Calls
    {
        public int WriteConfig, Build, InitWeights, CheckResume;
    }

    static TrainingJob<TinyNet> Job(RunDirectory run, VocDataset dataset, Calls calls, bool resume = false, long steps = 4) => new()
    {
        Directory = run,
        Options = new TrainerOptions { Steps = steps, BatchSize = 2, BaseLr = 1e-2, WarmupSteps = 0, CheckpointEvery = 2, LogEvery = 1, Seed = 5 },
        Samples = dataset.Samples, NumClasses = dataset.NumClasses, Transform = new TrainTransform { CropSize = 4 }, Workers = 1, Resume = resume,
        CheckResume = d => { calls.CheckResume++; Assert.Equal("toy", d.ReadConfig<ToyConfig>().Note); },
        WriteConfig = d => { calls.WriteConfig++; d.WriteConfig(new ToyConfig("toy")); },
        Build = () => { calls.Build++; return new TinyNet(classes: dataset.NumClasses); },
        InitWeights = _ => calls.InitWeights++,
        Trainable = net => new TinyTrainable(net),
    };

    [Fact]
    public void A_training_job_seeds_builds_initialises_and_trains_and_a_resume_skips_the_config_and_the_init()
    {
        using var dir = TestPaths.NewTempDir();
        var dataset = VocDataset.Open(VocTestData.CreateBlocksDataset(dir.File("voc"), 4, 16, 16), "train");
        var first = new RunDirectory(dir.File("a"));
        var calls = new Calls();
        TorchRuntime.Seed(123);
        var result = Job(first, dataset, calls).Run();
        Assert.True(result.Completed);
        Assert.Equal((1, 1, 1, 0), (calls.WriteConfig, calls.Build, calls.InitWeights, calls.CheckResume));
        Assert.StartsWith("{\n  \"format_version\": 1,\n  \"note\": \"toy\"", File.ReadAllText(first.ConfigPath));
        Assert.Equal("toy", first.ReadConfig<ToyConfig>().Note);
        Assert.True(first.IsFinished);

        // the template seeds torch before building: another folder, another global RNG state, the same weights
        var second = new RunDirectory(dir.File("b"));
        TorchRuntime.Seed(999);
        Job(second, dataset, new Calls()).Run();
        Assert.Equal(File.ReadAllBytes(first.FinalWeightsPath), File.ReadAllBytes(second.FinalWeightsPath));

        // a fresh run over checkpoints is refused before config.json is written again
        File.WriteAllText(first.ConfigPath, "kept");
        var refused = Assert.Throws<WeakSegException>(() => Job(first, dataset, calls).Run());
        Assert.Contains("already holds checkpoints", refused.Message);
        Assert.Equal("kept", File.ReadAllText(first.ConfigPath));
        Assert.Equal((1, 1), (calls.WriteConfig, calls.InitWeights));

        // a resume checks the recorded configuration first (here "kept" is not a toy configuration: refused, nothing built)
        Assert.Contains(first.ConfigPath, Assert.Throws<WeakSegException>(() => Job(first, dataset, calls, resume: true).Run()).Message);
        Assert.Equal((1, 1), (calls.CheckResume, calls.Build));

        // a resume builds the model but takes every weight from the checkpoint: no config, no init
        first.WriteConfig(new ToyConfig("toy"));
        var resumed = Job(first, dataset, calls, resume: true, steps: 4).Run();
        Assert.True(resumed.AlreadyComplete);
        Assert.Equal((1, 2, 1, 2), (calls.WriteConfig, calls.Build, calls.InitWeights, calls.CheckResume));
    }

    [Fact]
    public void A_job_whose_files_are_broken_leaves_nothing_behind()
    {
        using var dir = TestPaths.NewTempDir();
        var dataset = VocDataset.Open(VocTestData.CreateBlocksDataset(dir.File("voc"), 4, 16, 16), "train");
        File.WriteAllBytes(dataset.Samples[2].ImagePath, [1, 2, 3]);
        var run = new RunDirectory(dir.File("run"));
        var calls = new Calls();
        var e = Assert.Throws<WeakSegException>(() => Job(run, dataset, calls).Run());
        Assert.Contains(dataset.Samples[2].ImagePath, e.Message);
        Assert.Equal((0, 0), (calls.WriteConfig, calls.Build));
        Assert.False(Directory.Exists(run.Path));
    }
}
