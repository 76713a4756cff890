using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class BatchLoaderTests
{
    static void AssertSameBatch(ImageBatch a, ImageBatch b)
    {
        Assert.Equal(a.Step, b.Step);
        Assert.Equal(a.Names, b.Names);
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal(a.Masks, b.Masks);
        Assert.True(a.Images.AsSpan().SequenceEqual(b.Images), $"images of step {a.Step} differ");
    }

    [Fact]
    public void Stream_from_step_k_equals_the_tail_of_stream_from_zero_whatever_the_workers()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 10);
        var ds = VocDataset.Open(dir.Path, "train");
        var t = new TrainTransform { CropSize = 24 };
        var one = new BatchLoader(ds.Samples, ds.NumClasses, t, batchSize: 3, seed: 42, workers: 1, prefetch: 1);
        var three = new BatchLoader(ds.Samples, ds.NumClasses, t, batchSize: 3, seed: 42, workers: 3, prefetch: 5);
        Assert.Equal(3, one.BatchesPerEpoch); // 10 images, batch 3, drop last
        var full = one.Stream(0).Take(8).ToList();
        var resumed = three.Stream(4).Take(4).ToList();
        for (int i = 0; i < 4; i++) AssertSameBatch(full[4 + i], resumed[i]);
        Assert.Equal(1, full[4].Epoch);
        Assert.Equal(2, full[7].Epoch);
        var epoch1 = three.Epoch(1).ToList();
        Assert.Equal(3, epoch1.Count);
        for (int i = 0; i < 3; i++) AssertSameBatch(full[3 + i], epoch1[i]);
    }

    [Fact]
    public void Epochs_are_permutations_and_labels_are_multi_hot()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 7);
        var ds = VocDataset.Open(dir.Path, "train");
        var loader = new BatchLoader(ds.Samples, ds.NumClasses, new TrainTransform { CropSize = 16 }, batchSize: 2, seed: 1, dropLast: false, workers: 2);
        Assert.Equal(4, loader.BatchesPerEpoch);
        var e0 = loader.Epoch(0).ToList();
        var e1 = loader.Epoch(1).ToList();
        Assert.Equal(1, e0[^1].Count); // last partial batch kept
        var order0 = e0.SelectMany(b => b.Indices).ToArray();
        var order1 = e1.SelectMany(b => b.Indices).ToArray();
        Assert.Equal(Enumerable.Range(0, 7), order0.Order());
        Assert.Equal(Enumerable.Range(0, 7), order1.Order());
        Assert.NotEqual(order0, order1);
        foreach (var b in e0)
            for (int j = 0; j < b.Count; j++)
            {
                var s = ds.Samples[b.Indices[j]];
                Assert.Equal(s.Name, b.Names[j]);
                for (int c = 1; c <= 20; c++) Assert.Equal(s.Classes.Contains(c) ? 1f : 0f, b.Labels[j * 20 + c - 1]);
                // Every mask value in the crop is a class of the image (or background/ignore).
                for (int p = 0; p < 256; p++)
                {
                    byte v = b.Masks![j * 256 + p];
                    Assert.True(v == 0 || v == 255 || s.Classes.Contains(v), $"mask value {v} not among {string.Join(',', s.Classes)}");
                }
            }
        var noShuffle = new BatchLoader(ds.Samples, ds.NumClasses, new TrainTransform { CropSize = 16 }, 2, 1, shuffle: false, loadMasks: false);
        var first = noShuffle.Epoch(5).First();
        Assert.Equal([0, 1], first.Indices);
        Assert.Null(first.Masks);
    }

    [Fact]
    public void Bad_file_surfaces_as_an_error_naming_it_and_workers_stop()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 4);
        var ds = VocDataset.Open(dir.Path, "train");
        var bad = ds.Samples[2].ImagePath;
        File.WriteAllText(bad, "garbage");
        var loader = new BatchLoader(ds.Samples, ds.NumClasses, new TrainTransform { CropSize = 8 }, 1, 0, shuffle: false);
        var e = Assert.Throws<WeakSegException>(() => loader.Epoch(0).ToList());
        Assert.StartsWith(bad + ":", e.Message);
        var tooFew = Assert.Throws<WeakSegException>(() => new BatchLoader(ds.Samples, ds.NumClasses, new TrainTransform(), 5, 0));
        Assert.Contains("4 images, fewer than one batch of 5", tooFew.Message);
    }
}

[Collection("Torch")]
public class ImageBatchTensorTests
{
    [Fact]
    public void ToTensors_keeps_values_and_layout()
    {
        var batch = new ImageBatch
        {
            Images = Enumerable.Range(0, 2 * 3 * 2 * 2).Select(i => i * 0.5f).ToArray(),
            Masks = [0, 1, 255, 3, 4, 5, 6, 255],
            Labels = [1, 0, 0, 0, 1, 1],
            Names = ["a", "b"], Indices = [0, 1], Count = 2, Height = 2, Width = 2, NumClasses = 3,
        };
        using var scope = torch.NewDisposeScope();
        var (images, labels) = batch.ToTensors(torch.CPU);
        Assert.Equal([2L, 3, 2, 2], images.shape);
        Assert.Equal(torch.float32, images.dtype);
        Assert.Equal(0.5f * (1 * 12 + 2 * 4 + 1 * 2 + 1), images[1, 2, 1, 1].item<float>()); // flat index 23
        Assert.Equal([2L, 3], labels.shape);
        Assert.Equal(1f, labels[1, 2].item<float>());
        Assert.Equal(0f, labels[0, 1].item<float>());
        var masks = batch.MasksToTensor(torch.CPU);
        Assert.Equal(torch.int64, masks.dtype);
        Assert.Equal(255L, masks[0, 1, 0].item<long>());
        Assert.Equal(6L, masks[1, 1, 0].item<long>());
    }
}
