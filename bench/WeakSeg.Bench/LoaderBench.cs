using BenchmarkDotNet.Attributes;
using WeakSeg.Data;

namespace WeakSeg.Bench;

/// <summary>
/// Loader throughput: one epoch of <see cref="Images"/> VOC-sized (500×375) JPEGs through decode + RandomResizedCrop +
/// flip + jitter + normalisation, batch 16, 2 workers. images/s = Images / mean time.
/// Run: dotnet run -c Release --project bench/WeakSeg.Bench -- --filter '*LoaderBench*'
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class LoaderBench
{
    public const int Images = 256;
    string _root = "";
    VocDataset _dataset = null!;
    BatchLoader _loader = null!;

    [Params(96, 448)]
    public int CropSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "weakseg-loaderbench");
        if (!File.Exists(Path.Combine(_root, "ImageSets", "Segmentation", "train.txt")))
        {
            var rng = new Random(1);
            var names = new List<string>();
            for (int i = 0; i < Images; i++)
            {
                var img = new RgbImage(500, 375);
                var mask = new LabelMap(500, 375);
                int cx = rng.Next(500), cy = rng.Next(375), r = rng.Next(40, 160), cls = rng.Next(1, 21);
                for (int y = 0; y < 375; y++)
                    for (int x = 0; x < 500; x++)
                    {
                        int p = 3 * (y * 500 + x);
                        bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
                        img.Pixels[p] = (byte)(x / 2 + rng.Next(32)); img.Pixels[p + 1] = (byte)(y / 2 + rng.Next(32));
                        img.Pixels[p + 2] = (byte)(inside ? 200 + rng.Next(40) : rng.Next(64));
                        mask[x, y] = (byte)(inside ? cls : 0);
                    }
                var name = $"bench_{i:D4}";
                ImageCodec.Save(Path.Combine(_root, "JPEGImages", name + ".jpg"), img, 90);
                LabelPng.Write(Path.Combine(_root, "SegmentationClass", name + ".png"), mask);
                names.Add(name);
            }
            Directory.CreateDirectory(Path.Combine(_root, "ImageSets", "Segmentation"));
            File.WriteAllLines(Path.Combine(_root, "ImageSets", "Segmentation", "train.txt"), names);
        }
        _dataset = VocDataset.Open(_root, "train");
        _loader = new BatchLoader(_dataset.Samples, _dataset.NumClasses, new TrainTransform { CropSize = CropSize }, batchSize: 16, seed: 0, workers: 2, prefetch: 4);
    }

    [Benchmark]
    public int Epoch()
    {
        int n = 0;
        foreach (var b in _loader.Epoch(0)) n += b.Count;
        return n;
    }
}
