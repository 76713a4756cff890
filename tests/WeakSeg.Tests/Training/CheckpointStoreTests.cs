using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

[Collection("Torch")]
public class CheckpointStoreTests
{
    [Fact]
    public void Only_complete_folders_count_incomplete_ones_are_removed_and_prune_keeps_newest()
    {
        using var dir = TestPaths.NewTempDir();
        var store = new CheckpointStore(dir.File("checkpoints"));
        using var net = new TinyNet();
        using var opt = ParameterGroups.CreateAdamW(net.named_parameters(), new TrainerOptions { Steps = 10, WarmupSteps = 1 });
        foreach (var step in new long[] { 2, 4, 6, 8 })
            store.Save(new CheckpointState { Step = step, Options = new TrainerOptions { Steps = 10 } }, net, opt.Optimizer, [1, 2, 3]);
        // A crash mid-write leaves an incomplete folder, and a step folder without state.json must not count either.
        Directory.CreateDirectory(Path.Combine(store.Directory, ".incomplete-step-000000010"));
        Directory.CreateDirectory(Path.Combine(store.Directory, "step-000000012"));

        Assert.Equal(new long[] { 2, 4, 6, 8 }, store.List().Select(c => c.Step).ToArray());
        Assert.Equal(8, store.Latest()!.Step);
        Assert.Equal(8, CheckpointStore.ReadState(store.Latest()!).Step);
        Assert.Equal(new byte[] { 1, 2, 3 }, CheckpointStore.ReadRngState(store.Latest()!));

        store.Prune(2);
        Assert.Equal(new long[] { 6, 8 }, store.List().Select(c => c.Step).ToArray());
        Assert.False(Directory.Exists(Path.Combine(store.Directory, ".incomplete-step-000000010")));
        Assert.True(Directory.Exists(Path.Combine(store.Directory, "step-000000006")));
    }

    [Fact]
    public void Loading_weights_into_a_different_model_names_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var store = new CheckpointStore(dir.File("checkpoints"));
        using var net = new TinyNet();
        using var opt = ParameterGroups.CreateAdamW(net.named_parameters(), new TrainerOptions { Steps = 10, WarmupSteps = 1 });
        var info = store.Save(new CheckpointState { Step = 1 }, net, opt.Optimizer, [0]);
        using var other = new TinyNet(hidden: 8);
        var e = Assert.Throws<WeakSegException>(() => CheckpointStore.LoadModel(info.ModelPath, other));
        Assert.StartsWith(info.ModelPath, e.Message);
        Assert.Contains("do not fit", e.Message);
        var missing = Assert.Throws<WeakSegException>(() => CheckpointStore.LoadModel(dir.File("nope.bin"), net));
        Assert.Contains("nope.bin", missing.Message);
    }
}
