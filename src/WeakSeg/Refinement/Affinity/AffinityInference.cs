using WeakSeg.Runtime;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Affinity;

/// <summary>Random-walk refinement of class maps with a trained <see cref="AffinityNet"/> (PSA infer_aff.py).</summary>
public static class AffinityInference
{
    /// <summary>
    /// <c>weakseg affinity infer</c>: loads the affinity run <paramref name="runDir"/> and refines every map of <paramref name="camDir"/>
    /// (<see cref="RefineDirectory"/>) with the walk <paramref name="walk"/> gives for the run's radius (null: the walk's defaults at it).
    /// Returns the counts and the walk used.
    /// </summary>
    public static (int Written, int Skipped, RandomWalkConfig Walk) RefineWithRun(string runDir, string camDir, string dataRoot, string outDir,
        Func<int, RandomWalkConfig>? walk = null, int threads = 0, bool overwrite = false, IProgress<ProgressUpdate>? progress = null, WorkShard? shard = null)
    {
        TorchRuntime.Initialize("cpu", threads);
        var (net, config) = AffinityRun.Load(runDir);
        var walkConfig = walk?.Invoke(config.Radius) ?? new RandomWalkConfig { Radius = config.Radius };
        var (written, skipped) = RefineDirectory(net, camDir, dataRoot, outDir, walkConfig, overwrite, progress, shard);
        return (written, skipped, walkConfig);
    }

    /// <summary>
    /// Refined maps of one image. The image (ImageNet-normalised at its own size) is zero-padded to a multiple of the patch size;
    /// the scores [background; maps] (background per <see cref="RandomWalkConfig.Background"/>) are zero-padded the same way and
    /// average-pooled to the feature grid; the walk v·T^(2^LogT) runs there; the result is upsampled bilinearly and cropped.
    /// Written planes are r_c = w_c / (w_c + w_bg) of the walked scores w, in [0, 1]: argmax over classes is unchanged and
    /// r_c &gt; 0.5 exactly where class c beats the background, so background threshold 0.5 reproduces PSA's argmax labels.
    /// </summary>
    public static CamMaps RefineMaps(AffinityNet net, RgbImage image, CamMaps maps, RandomWalkConfig? config = null)
    {
        config ??= new RandomWalkConfig();
        config.Validate();
        if (image.Width != maps.Width || image.Height != maps.Height)
            throw new WeakSegException($"maps of '{maps.Name}' are {maps.Width}x{maps.Height} (WxH) but the image is {image.Width}x{image.Height}");
        int k = maps.Classes.Length;
        if (k == 0) return maps;
        int patch = net.Config.Backbone.PatchSize, stride = net.Config.Stride;
        int H = maps.Height, W = maps.Width;
        int paddedH = (H + patch - 1) / patch * patch, paddedW = (W + patch - 1) / patch * patch;
        var (chw, _, _) = new EvalTransform().Apply(image);
        var scores = CrfPostProcessing.BackgroundAndMaps(maps, config.Background,
            config.Background == MapBackground.Threshold ? config.BackgroundThreshold : config.BackgroundAlpha);

        bool wasTraining = net.training;
        net.eval();
        try
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var device = net.parameters().First().device;
            var padding = new long[] { 0, paddedW - W, 0, paddedH - H };
            var input = nn.functional.pad(torch.tensor(chw, new long[] { 1, 3, H, W }).to(device), padding);      // [1, 3, H', W']
            var features = net.call(input);                                                                         // [1, F, h, w]
            int h = (int)features.shape[2], w = (int)features.shape[3];
            long n = (long)h * w;
            var score = nn.functional.pad(torch.tensor(scores, new long[] { 1, k + 1, H, W }).to(device), padding);
            var pooled = nn.functional.avg_pool2d(score, stride, stride).reshape(k + 1, n);                          // [K'+1, N]
            var (fromArr, toArr) = AffinityPairs.Indices(h, w, config.Radius);
            var from = torch.tensor(fromArr, device: device);
            var to = torch.tensor(toArr, device: device);
            var affinity = RandomWalk.DenseAffinity(AffinityNet.PairAffinities(features, from, to)[0], from, to, n);  // [N, N]
            var transition = RandomWalk.TransitionMatrix(affinity, config.Beta);
            var walked = RandomWalk.Propagate(pooled, transition, config.LogT).reshape(1, k + 1, h, w);
            var full = nn.functional.interpolate(walked, size: new long[] { paddedH, paddedW }, mode: InterpolationMode.Bilinear, align_corners: false)
                .narrow(2, 0, H).narrow(3, 0, W)[0];                                                                // [K'+1, H, W]
            var background = full.narrow(0, 0, 1);
            var classes = full.narrow(0, 1, k);
            var sum = classes + background;
            var ratio = torch.where(sum > 0, classes / sum.clamp_min(1e-30), torch.zeros_like(classes)).clamp(0, 1);
            var values = ratio.contiguous().cpu().data<float>().ToArray();
            return new CamMaps(maps.Name, values, maps.Classes.ToArray(), H, W);
        }
        finally
        {
            if (wasTraining) net.train();
        }
    }

    /// <summary>
    /// Refines every map pair in <paramref name="camDir"/> (images from the VOC-layout <paramref name="dataRoot"/>) and writes
    /// <see cref="CamMapFile"/> pairs to <paramref name="outDir"/>; existing outputs are skipped unless <paramref name="overwrite"/>.
    /// One image at a time (libtorch uses the cores).
    /// </summary>
    public static (int Written, int Skipped) RefineDirectory(AffinityNet net, string camDir, string dataRoot, string outDir, RandomWalkConfig? config = null,
                                                            bool overwrite = false, IProgress<ProgressUpdate>? progress = null, WorkShard? shard = null)
    {
        shard ??= WorkShard.All;
        var allNames = CamMapFile.ListNames(camDir);
        if (allNames.Count == 0) throw WeakSegException.ForFile(camDir, "contains no map files (NAME.npy)");
        var names = shard.Select(allNames);
        var layout = new VocLayout(dataRoot);
        Directory.CreateDirectory(outDir);
        var job = new ImageDirectoryJob { Names = names, IsDone = name => CamMapFile.Exists(outDir, name), Overwrite = overwrite };
        var summary = job.Run(i =>
        {
            var name = names[i];
            var maps = CamMapFile.Read(camDir, name);
            var imagePath = layout.ImagePath(name);
            CamMaps refined;
            try { refined = RefineMaps(net, ImageCodec.Load(imagePath), maps, config); }
            catch (WeakSegException e) { throw new WeakSegException($"{CamMapFile.MapPath(camDir, name)} with image {imagePath}: {e.Message}"); }
            CamMapFile.Write(outDir, name, refined.Maps, refined.Classes, refined.Height, refined.Width);
        }, progress);
        Span<long> counts = [summary.Written, summary.Skipped];
        shard.SumOverRanks(counts);
        return ((int)counts[0], (int)counts[1]);
    }
}
