using WeakSeg.Runtime;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;

namespace WeakSeg.Refinement;

/// <summary>How the background score plane is made from foreground class maps (values in [0, 1]).</summary>
public enum MapBackground
{
    /// <summary>A constant plane: the background threshold t (MCTformer/WeakTr evaluation, MCTformer's psa/infer_aff.py bg_thr).</summary>
    Threshold,

    /// <summary>(1 − max_c map_c)^α per pixel (PSA infer_cls.py _crf_with_alpha and infer_aff.py).</summary>
    Power,
}

/// <summary>Settings of <see cref="CrfPostProcessing.RefineMaps"/>.</summary>
public sealed record CrfMapOptions
{
    public MapBackground Background { get; init; } = MapBackground.Threshold;

    /// <summary>Background score when <see cref="Background"/> is <see cref="MapBackground.Threshold"/> (same meaning as the pseudo-label threshold).</summary>
    public float Threshold { get; init; } = CamToLabel.DefaultThreshold;

    /// <summary>Power α when <see cref="Background"/> is <see cref="MapBackground.Power"/> (PSA infer_aff.py --alpha 16).</summary>
    public float Alpha { get; init; } = 16f;

    /// <summary>Kernel parameters (PSA crf_inference by default).</summary>
    public DenseCrfConfig Crf { get; init; } = DenseCrfConfig.Psa;

    public void Validate()
    {
        if (!(Threshold >= 0 && Threshold <= 1)) throw new WeakSegException($"CRF background threshold {Threshold} must be in [0, 1]");
        if (!(Alpha > 0 && float.IsFinite(Alpha))) throw new WeakSegException($"CRF background power α {Alpha} must be a finite number > 0");
        var errors = Crf.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid dense CRF configuration: " + string.Join("; ", errors));
    }
}

/// <summary>Settings of <see cref="CrfPostProcessing.RefineDirectory"/>.</summary>
public sealed record CrfDirectoryOptions
{
    /// <summary>Kernel parameters; MCTformer's segmentation-stage CRF by default (seg/tool/imutils.py).</summary>
    public DenseCrfConfig Crf { get; init; } = DenseCrfConfig.MctFormerSeg;

    /// <summary>Rewrite outputs that already exist (default: skip them, so an interrupted run resumes).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Images refined at the same time. Each CRF then runs single-threaded, which keeps all cores busy with less
    /// synchronisation than one multi-threaded CRF at a time; with one image at a time the CRF uses every core.</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>Counts of a <see cref="CrfPostProcessing.RefineDirectory"/> run.</summary>
public sealed record CrfDirectorySummary(int Written, int Skipped, long ChangedPixels, long TotalPixels);

/// <summary>
/// Applies the dense CRF (<see cref="DenseCrf"/>) to WeakSeg's stage outputs: class maps (<see cref="CamMaps"/>) and label images.
/// </summary>
public static class CrfPostProcessing
{
    /// <summary>
    /// Scores [K'+1, H, W]: the background plane (see <see cref="MapBackground"/>) followed by the class maps, as PSA's
    /// <c>bgcam_score</c>. Without class planes the background is the only plane.
    /// </summary>
    public static float[] BackgroundAndMaps(CamMaps maps, MapBackground background, float value)
    {
        int n = maps.PlaneSize, k = maps.Classes.Length;
        var scores = new float[(k + 1) * n];
        if (background == MapBackground.Threshold) Array.Fill(scores, value, 0, n);
        else
        {
            var (max, _) = CamToLabel.MaxOverClasses(maps);
            for (int i = 0; i < n; i++) scores[i] = MathF.Pow(1f - (k == 0 ? 0f : max[i]), value);
        }
        maps.Maps.AsSpan(0, k * n).CopyTo(scores.AsSpan(n));
        return scores;
    }

    /// <summary>Maps plane indices of [background; maps] (0 = background, i ≥ 1 = Classes[i−1]) to class indices.</summary>
    public static LabelMap PlaneIndicesToLabels(ReadOnlySpan<byte> planeIndices, CamMaps maps)
    {
        var lookup = new byte[maps.Classes.Length + 1];
        for (int i = 0; i < maps.Classes.Length; i++) lookup[i + 1] = checked((byte)maps.Classes[i]);
        var labels = new byte[planeIndices.Length];
        for (int i = 0; i < labels.Length; i++) labels[i] = lookup[planeIndices[i]];
        return new LabelMap(maps.Width, maps.Height, labels);
    }

    static void CheckSize(CamMaps maps, RgbImage image)
    {
        if (image.Width != maps.Width || image.Height != maps.Height)
            throw new WeakSegException($"maps of '{maps.Name}' are {maps.Width}x{maps.Height} (WxH) but the image is {image.Width}x{image.Height}");
    }

    /// <summary>
    /// Dense CRF on class maps, PSA style: unary −log(clip(s, 1e-5, 1)) of the scores [background; maps] (PSA crf_inference,
    /// pydensecrf unary_from_softmax on unnormalised scores), then the argmax as a label map of class indices.
    /// </summary>
    public static LabelMap RefineMaps(CamMaps maps, RgbImage image, CrfMapOptions? options = null)
    {
        options ??= new CrfMapOptions();
        options.Validate();
        CheckSize(maps, image);
        if (maps.Classes.Length == 0) return new LabelMap(maps.Width, maps.Height);
        var scores = BackgroundAndMaps(maps, options.Background, options.Background == MapBackground.Threshold ? options.Threshold : options.Alpha);
        var result = DenseCrf.RefineScores(image.Pixels, image.Width, image.Height, scores, options.Crf);
        return PlaneIndicesToLabels(result.Labels, maps);
    }

    /// <summary>
    /// Dense CRF on a label image (pydensecrf unary_from_labels with gt_prob = <see cref="DenseCrfConfig.GroundTruthProbability"/>,
    /// as the seed repositories' crf_inference_label); 255 pixels get a uniform unary. Labels must be &lt; <paramref name="labelCount"/>.
    /// </summary>
    public static LabelMap RefineLabelMap(LabelMap labels, RgbImage image, int labelCount, DenseCrfConfig? config = null)
    {
        if (image.Width != labels.Width || image.Height != labels.Height)
            throw new WeakSegException($"label map is {labels.Width}x{labels.Height} (WxH) but the image is {image.Width}x{image.Height}");
        var result = DenseCrf.RefineLabels(image.Pixels, image.Width, image.Height, labels.Labels, labelCount, config, unsureLabel: LabelMap.Ignore);
        return new LabelMap(labels.Width, labels.Height, result.Labels);
    }

    /// <summary>
    /// Refines every label image <c>PRED/NAME.png</c> of <paramref name="split"/> with <see cref="RefineLabelMap"/> (K = the
    /// dataset's classes incl. background) and writes <c>OUT/NAME.png</c> atomically; existing outputs are skipped unless
    /// <see cref="CrfDirectoryOptions.Overwrite"/>. Errors name the files involved.
    /// </summary>
    public static CrfDirectorySummary RefineDirectory(string predDir, string dataRoot, string split, string outDir, CrfDirectoryOptions? options = null,
                                                      IProgress<ProgressUpdate>? progress = null, WorkShard? shard = null)
    {
        options ??= new CrfDirectoryOptions();
        shard ??= WorkShard.All;
        var errors = options.Crf.Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid dense CRF configuration: " + string.Join("; ", errors));
        if (!Directory.Exists(predDir)) throw WeakSegException.ForFile(predDir, "prediction directory not found");
        var layout = new VocLayout(dataRoot);
        int labelCount = ClassNames.ForRoot(layout.Root).Count;
        var names = shard.Select(layout.ReadSplit(split));
        var missing = names.FirstOrDefault(n => !File.Exists(Path.Combine(predDir, n + ".png")));
        if (missing != null)
            throw WeakSegException.ForFile(Path.Combine(predDir, missing + ".png"), $"prediction not found for image '{missing}' of split '{split}'");
        Directory.CreateDirectory(outDir);
        int parallel = Math.Max(1, Math.Min(options.MaxParallelism, names.Count));
        // Parallel over images with single-threaded CRFs when there are several images; one image gets every core.
        var crf = options.Crf with { MaxThreads = options.Crf.MaxThreads ?? (parallel > 1 ? 1 : Environment.ProcessorCount) };
        long changed = 0, total = 0;
        var job = new ImageDirectoryJob
        {
            Names = names, IsDone = name => File.Exists(Path.Combine(outDir, name + ".png")), Overwrite = options.Overwrite, MaxParallelism = parallel,
        };
        var summary = job.Run(i =>
        {
            var name = names[i];
            var predPath = Path.Combine(predDir, name + ".png");
            var imagePath = layout.ImagePath(name);
            var pred = LabelPng.Read(predPath);
            var image = ImageCodec.Load(imagePath);
            LabelMap refined;
            try { refined = RefineLabelMap(pred, image, labelCount, crf); }
            catch (WeakSegException e) { throw new WeakSegException($"{predPath} with image {imagePath}: {e.Message}"); }
            LabelPng.Write(Path.Combine(outDir, name + ".png"), refined); // atomic (tmp + rename)
            long diff = 0;
            for (int p = 0; p < refined.Labels.Length; p++) if (refined.Labels[p] != pred.Labels[p]) diff++;
            Interlocked.Add(ref changed, diff);
            Interlocked.Add(ref total, refined.Labels.Length);
        }, progress);
        Span<long> counts = [summary.Written, summary.Skipped, changed, total];
        shard.SumOverRanks(counts);
        return new CrfDirectorySummary((int)counts[0], (int)counts[1], counts[2], counts[3]);
    }
}
